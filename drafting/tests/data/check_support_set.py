#!/usr/bin/env python3
"""Validate support-set.jsonl and print a summary table.

Usage: python3 check_support_set.py [support-set.jsonl] [--aci DIR]
With --aci DIR (folder holding ACI-Bench train.csv / valid.csv) every segment is
also checked to be a verbatim part of the dialogue turn whose 1-based index is its id.
"""
import csv, json, re, sys
from collections import Counter, defaultdict

SUPPORTED_KINDS = {"verbatim", "paraphrase", "summary"}
UNSUPPORTED_KINDS = {"laterality", "negation", "dose", "frequency", "medication", "vital", "test",
                     "referral", "follow_up", "finding", "diagnosis", "duration", "small_talk", "body_site"}

def detok(t):
    t = re.sub(r"\s+([.,?!;:])", r"\1", t)
    return re.sub(r"\s+", " ", t).strip()

def load_aci(d):
    turns = {}
    for name in ("train", "valid"):
        with open(f"{d}/{name}.csv", newline="") as f:
            for r in csv.DictReader(f):
                ts = []
                for line in r["dialogue"].split("\n"):
                    line = line.strip()
                    if not line:
                        continue
                    m = re.match(r"\[(\w+)\]\s*(.*)", line)
                    if m:
                        ts.append(m.group(2))
                    else:
                        ts[-1] += " " + line
                turns[(name, r["encounter_id"])] = [detok(t) for t in ts]
    return turns

def main():
    args = sys.argv[1:]
    aci_dir = None
    if "--aci" in args:
        i = args.index("--aci"); aci_dir = args[i + 1]; del args[i:i + 2]
    path = args[0] if args else "support-set.jsonl"
    turns = load_aci(aci_dir) if aci_dir else None
    errors, items = [], []
    for n, line in enumerate(open(path), 1):
        try:
            d = json.loads(line)
        except Exception as e:
            errors.append(f"line {n}: bad JSON: {e}"); continue
        items.append(d)
        tag = f"line {n} ({d.get('id')})"
        for k in ("id", "split", "source", "segments", "sentence", "cites", "supported", "kind"):
            if k not in d:
                errors.append(f"{tag}: missing {k}")
        if d.get("split") not in ("dev", "held_out"):
            errors.append(f"{tag}: bad split")
        ids = [s["id"] for s in d["segments"]]
        if d["cites"] != ids:
            errors.append(f"{tag}: cites {d['cites']} != segment ids {ids}")
        if len(set(ids)) != len(ids) or not all(isinstance(i, int) and i > 0 for i in ids):
            errors.append(f"{tag}: segment ids not unique positive ints")
        for s in d["segments"]:
            if s.get("speaker") not in ("clinician", "patient") or not s.get("text", "").strip():
                errors.append(f"{tag}: bad segment {s}")
        if not d["sentence"].endswith("."):
            errors.append(f"{tag}: sentence does not end with a period")
        kinds = SUPPORTED_KINDS if d["supported"] is True else UNSUPPORTED_KINDS if d["supported"] is False else set()
        if d["kind"] not in kinds:
            errors.append(f"{tag}: kind {d['kind']} invalid for supported={d['supported']}")
        if turns is not None and d["source"].startswith("aci-bench"):
            _, f, eid = d["source"].split()
            dlg = turns.get((f, eid))
            if dlg is None:
                errors.append(f"{tag}: unknown source {d['source']}")
            else:
                for s in d["segments"]:
                    if s["id"] > len(dlg) or s["text"] not in dlg[s["id"] - 1]:
                        errors.append(f"{tag}: segment {s['id']} not found verbatim in {eid} turn {s['id']}")
    ids = [d["id"] for d in items]
    if len(set(ids)) != len(ids):
        errors.append("duplicate item ids")
    enc_split = defaultdict(set)
    for d in items:
        enc_split[d["source"]].add(d["split"])
    for src, sp in enc_split.items():
        if src != "written" and len(sp) > 1:
            errors.append(f"encounter {src} appears in both splits")

    # summary table
    kinds = sorted(SUPPORTED_KINDS) + sorted(UNSUPPORTED_KINDS)
    c = Counter((d["kind"], d["split"]) for d in items)
    print(f"{'kind':12s} {'label':11s} {'dev':>5s} {'held':>5s} {'total':>6s}")
    for k in kinds:
        lab = "supported" if k in SUPPORTED_KINDS else "unsupported"
        print(f"{k:12s} {lab:11s} {c[(k, 'dev')]:5d} {c[(k, 'held_out')]:5d} {c[(k, 'dev')] + c[(k, 'held_out')]:6d}")
    for lab, val in (("supported", True), ("unsupported", False)):
        dv = sum(1 for d in items if d["supported"] is val and d["split"] == "dev")
        ho = sum(1 for d in items if d["supported"] is val and d["split"] == "held_out")
        print(f"{'ALL':12s} {lab:11s} {dv:5d} {ho:5d} {dv + ho:6d}")
    dv = sum(1 for d in items if d["split"] == "dev")
    print(f"{'ALL':12s} {'items':11s} {dv:5d} {len(items) - dv:5d} {len(items):6d}")
    encs = {s: {src for src, sp in enc_split.items() if s in sp} for s in ("dev", "held_out")}
    print(f"encounters: dev {len(encs['dev'])}, held_out {len(encs['held_out'])}, total {len(enc_split)}")
    small = [k for k in UNSUPPORTED_KINDS if c[(k, 'dev')] + c[(k, 'held_out')] < 10]
    if small:
        errors.append(f"unsupported kinds with < 10 items: {small}")
    if errors:
        print("\nERRORS:"); print("\n".join(errors)); sys.exit(1)
    print("\nOK: all checks passed")

if __name__ == "__main__":
    main()
