// Scribe review app: the only script. Pages work without it; it adds
// click-a-sentence-to-see-its-sources and segment playback.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const sentence of document.querySelectorAll(".sentence")) {
    sentence.addEventListener("click", (event) => {
      if (event.target.closest("details, form, a")) return;
      for (const el of document.querySelectorAll(".segment.cited, .sentence.active")) {
        el.classList.remove("cited", "active");
      }
      sentence.classList.add("active");
      const ids = (sentence.dataset.cites || "").split(" ").filter(Boolean);
      let first = null;
      for (const id of ids) {
        const seg = document.getElementById("seg-" + id);
        if (seg) {
          seg.classList.add("cited");
          first = first || seg;
        }
      }
      if (first) first.scrollIntoView({ block: "center", behavior: "smooth" });
    });
  }
  const copy = document.getElementById("copy-note");
  if (copy) {
    copy.addEventListener("click", async () => {
      await navigator.clipboard.writeText(document.getElementById("note-text").value);
      document.getElementById("copied").textContent = " Copied.";
    });
  }
  const player = document.getElementById("player");
  for (const button of document.querySelectorAll("button.play")) {
    button.addEventListener("click", () => {
      if (!player) return;
      player.src = button.dataset.src;
      player.play();
    });
  }
});
