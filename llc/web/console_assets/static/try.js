// Try a call: this page is the phone line. Microphone -> 8 kHz mu-law -> Media Streams
// messages on the call socket; the agent's frames -> played back; marks answered when played
// (the server times barge-ins by them), all pending marks answered at a clear, as Twilio does.
"use strict";
(() => {
  const root = document.getElementById("try");
  const $ = (id) => document.getElementById(id);
  const RATE = 8000, FRAME = 160;  // 20 ms frames, as Twilio sends them
  const state = { framesOut: 0, framesIn: 0, marksAnswered: 0, clears: 0, phase: "idle", callSid: "" };
  window.llcTry = state;  // what the page did, for a look from the developer tools
  let ctx = null, micStream = null, proc = null, ws = null, streamSid = "", chunk = 0;
  let nextAt = 0, sources = [], pendingMarks = [], markTimer = null, pollTimer = null;
  let carry = new Float32Array(0), frame = new Uint8Array(FRAME), filled = 0;

  function status(text) { $("status").textContent = text; }

  function muEncode(s) {
    let x = Math.round(Math.max(-1, Math.min(1, s)) * 32767);
    const sign = x < 0 ? 0x80 : 0;
    x = Math.min(Math.abs(x), 32635) + 0x84;
    let exp = 7;
    for (let mask = 0x4000; (x & mask) === 0 && exp > 0; mask >>= 1) exp--;
    return ~(sign | (exp << 4) | ((x >> (exp + 3)) & 0x0f)) & 0xff;
  }
  function muDecode(u) {
    u = ~u & 0xff;
    const mag = ((((u & 0x0f) << 3) + 0x84) << ((u >> 4) & 7)) - 0x84;
    return (u & 0x80 ? -mag : mag) / 32768;
  }
  function send(obj) { if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(obj)); }
  function b64(bytes) { let s = ""; for (const b of bytes) s += String.fromCharCode(b); return btoa(s); }

  // The context runs at the device's rate: average each 8 kHz sample's share of it (a box filter).
  function capture(input) {
    const step = ctx.sampleRate / RATE;
    const all = new Float32Array(carry.length + input.length);
    all.set(carry); all.set(input, carry.length);
    let pos = 0;
    while (pos + step <= all.length) {
      let sum = 0; const end = Math.floor(pos + step);
      for (let i = Math.floor(pos); i < end; i++) sum += all[i];
      frame[filled++] = muEncode(sum / Math.max(1, end - Math.floor(pos)));
      pos += step;
      if (filled === FRAME) {
        send({ event: "media", streamSid, media: { track: "inbound", chunk: String(++chunk),
               timestamp: String(chunk * 20), payload: b64(frame) } });
        state.framesOut++; filled = 0;
      }
    }
    carry = all.slice(Math.floor(pos));
  }

  function play(payload) {
    const bytes = atob(payload), buf = ctx.createBuffer(1, bytes.length, RATE), data = buf.getChannelData(0);
    for (let i = 0; i < bytes.length; i++) data[i] = muDecode(bytes.charCodeAt(i));
    const src = ctx.createBufferSource();
    src.buffer = buf; src.connect(ctx.destination);
    nextAt = Math.max(nextAt, ctx.currentTime + 0.05);
    src.start(nextAt); nextAt += bytes.length / RATE;
    sources.push(src); src.onended = () => { sources = sources.filter((s) => s !== src); };
    state.framesIn++;
  }
  function answerMark(name) { send({ event: "mark", streamSid, mark: { name } }); state.marksAnswered++; }
  function answerPlayedMarks() {
    while (pendingMarks.length && pendingMarks[0].at <= ctx.currentTime) answerMark(pendingMarks.shift().name);
  }
  function clearPlayback() {
    for (const s of sources) { try { s.stop(); } catch (e) { /* not started yet */ } }
    sources = []; nextAt = 0; state.clears++;
    for (const m of pendingMarks.splice(0)) answerMark(m.name);
  }
  function onMessage(event) {
    const msg = JSON.parse(event.data);
    if (msg.event === "media") play(msg.media.payload);
    else if (msg.event === "mark") pendingMarks.push({ name: msg.mark.name, at: Math.max(nextAt, ctx.currentTime) });
    else if (msg.event === "clear") clearPlayback();
  }

  async function poll(sid) {
    const r = await fetch(root.dataset.progressUrl + encodeURIComponent(sid) + ".json");
    if (!r.ok) return;
    const p = await r.json();
    const box = $("try-transcript");
    box.replaceChildren(...p.transcript.map((l) => {
      const li = document.createElement("li");
      li.className = "line " + l.role + (l.interrupted ? " interrupted" : "");
      for (const [cls, text] of [["at", l.at.toFixed(2) + "s"], ["role", l.role], ["text", l.text]]) {
        const span = document.createElement("span");
        span.className = cls; span.textContent = text; li.append(span);
      }
      return li;
    }));
    const v2v = p.voice_to_voice_ms.filter((v) => v !== null);
    $("try-latency").textContent = v2v.length ? "voice-to-voice per turn: " + v2v.map((v) => v.toFixed(0) + " ms").join(", ") : "";
    if (p.ended) { clearInterval(pollTimer); status(`The call ended (${p.end_reason}).`); }
  }

  async function start() {
    $("start").disabled = true;
    status("Asking for the microphone…");
    try {
      ctx = new AudioContext();
      await ctx.resume();
      micStream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, channelCount: 1 } });
      const r = await fetch(root.dataset.startUrl, { method: "POST", headers: { "Content-Type": "application/json" },
                                                     body: JSON.stringify({ called: $("called").value }) });
      if (!r.ok) throw new Error(await r.text());
      const call = await r.json();
      streamSid = call.stream_sid; state.callSid = call.call_sid;
      const link = $("call-link");
      link.href = "../calls/" + call.call_sid; link.hidden = false;
      ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + call.socket);
      ws.onmessage = onMessage;
      ws.onclose = (e) => { state.phase = "closed"; stop(); status(`Disconnected (${e.code}).`); };
      ws.onopen = () => {
        send({ event: "connected", protocol: "Call", version: "1.0.0" });
        send({ event: "start", sequenceNumber: "1", streamSid, start: {
          streamSid, accountSid: "ACbrowser", callSid: call.call_sid, tracks: ["inbound"],
          mediaFormat: { encoding: "audio/x-mulaw", sampleRate: RATE, channels: 1 }, customParameters: call.parameters } });
        const src = ctx.createMediaStreamSource(micStream);
        proc = ctx.createScriptProcessor(1024, 1, 1);
        proc.onaudioprocess = (e) => capture(e.inputBuffer.getChannelData(0));
        src.connect(proc); proc.connect(ctx.destination);  // outputs silence; it must be connected to run
        markTimer = setInterval(answerPlayedMarks, 20);
        pollTimer = setInterval(() => poll(call.call_sid), 500);
        state.phase = "live"; $("hangup").disabled = false;
        status("Connected: talk to your agent.");
      };
    } catch (err) {
      status("Could not start the call: " + (err.message || err));
      stop();
    }
  }
  function stop() {
    if (proc) { proc.disconnect(); proc.onaudioprocess = null; proc = null; }
    if (micStream) { micStream.getTracks().forEach((t) => t.stop()); micStream = null; }
    clearInterval(markTimer);
    $("hangup").disabled = true; $("start").disabled = false;
  }
  function hangUp() {
    send({ event: "stop", streamSid, stop: { accountSid: "ACbrowser", callSid: state.callSid } });
    state.phase = "hung up"; stop();
    setTimeout(() => ws && ws.close(1000), 200);
    if (state.callSid) setTimeout(() => poll(state.callSid), 1000);
  }
  $("start").addEventListener("click", start);
  $("hangup").addEventListener("click", hangUp);
})();
