// Browser capture: 16 kHz mono from the microphone, in one-second chunks numbered from 0, sent
// over a WebSocket. Every chunk is kept until the appliance acknowledges it (after committing it)
// and is resent after a reconnect; the appliance ignores chunks it already has.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("recorder");
  if (!root) return;
  const id = root.dataset.encounter;
  const csrf = root.dataset.csrf;
  const status = document.getElementById("rec-status");
  const meter = document.getElementById("rec-level");
  const startButton = document.getElementById("rec-start");
  const stopButton = document.getElementById("rec-stop");
  const SECOND = 16000;
  const unacked = new Map();
  let ws = null, seq = 0, retry = 0, stopping = false, done = false;
  let buffer = new Int16Array(SECOND), fill = 0;
  let context, source, tap, stream;

  function frame(samples) {
    const bytes = new ArrayBuffer(4 + samples.length * 2);
    const view = new DataView(bytes);
    view.setUint32(0, seq, true);
    for (let i = 0; i < samples.length; i++) view.setInt16(4 + 2 * i, samples[i], true);
    return bytes;
  }

  function send(samples) {
    const bytes = frame(samples);
    unacked.set(seq, bytes);
    seq += 1;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(bytes);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${location.host}/encounters/${id}/stream?csrf=${encodeURIComponent(csrf)}`);
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      retry = 0;
      for (const bytes of unacked.values()) ws.send(bytes);
      if (stopping) ws.send("stop");
      status.textContent = stopping ? "Finishing…" : "Recording…";
    };
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.ack !== undefined) unacked.delete(message.ack);
      if (message.error) status.textContent = `Problem: ${message.error}`;
      if (message.done) {
        done = true;
        location.href = `/encounters/${id}`;
      }
    };
    ws.onclose = () => {
      if (done) return;
      status.textContent = `Connection lost; ${unacked.size} s kept here; reconnecting…`;
      setTimeout(connect, Math.min(5000, 250 * 2 ** retry++));
    };
  }

  startButton.addEventListener("click", async () => {
    startButton.disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
    } catch (e) {
      status.textContent = `No microphone: ${e.message}. Allow microphone access, or use another device.`;
      startButton.disabled = false;
      return;
    }
    context = new AudioContext({ sampleRate: SECOND });
    await context.audioWorklet.addModule("/static/recorder-worklet.js");
    source = context.createMediaStreamSource(stream);
    tap = new AudioWorkletNode(context, "pcm-tap");
    tap.port.onmessage = (event) => {
      const block = event.data;
      let peak = 0;
      for (let i = 0; i < block.length; i++) {
        const s = Math.max(-1, Math.min(1, block[i]));
        peak = Math.max(peak, Math.abs(s));
        buffer[fill++] = Math.round(s * 32767);
        if (fill === SECOND) {
          send(buffer);
          buffer = new Int16Array(SECOND);
          fill = 0;
        }
      }
      meter.value = peak;
    };
    // A silent path to the output keeps the graph (and so the tap) running.
    const mute = context.createGain();
    mute.gain.value = 0;
    source.connect(tap).connect(mute).connect(context.destination);
    connect();
    stopButton.disabled = false;
  });

  stopButton.addEventListener("click", () => {
    stopping = true;
    stopButton.disabled = true;
    stream.getTracks().forEach((t) => t.stop());
    tap.disconnect();
    if (fill > 0) send(buffer.slice(0, fill));
    status.textContent = "Finishing…";
    if (ws.readyState === WebSocket.OPEN) ws.send("stop");
  });
});
