// Test softphone for the WebRTC gateway: a browser peer connection that sends
// the (fake) microphone and analyses the audio it receives.  Driven by the
// tests through WebDriver "execute async script"; every wait has a timeout.
"use strict";

const softphone = (() => {
  let pc = null;
  let remoteStream = null;
  let audioContext = null;
  let analyser = null;
  const events = [];
  const trickled = [];

  function log(message) {
    events.push(message);
    document.getElementById("status").textContent = message;
    console.log("softphone: " + message);
  }

  function withTimeout(promise, ms, what) {
    return Promise.race([
      promise,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(what + " timed out after " + ms + " ms")), ms)),
    ]);
  }

  // webrtc-pc §4.4.1.1: wait for ICE gathering to finish, so that the SDP we
  // hand over carries every candidate (the gateway does not trickle).
  function gatheringComplete() {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return withTimeout(new Promise((resolve) => {
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") resolve();
      });
    }), 10000, "ICE gathering");
  }

  async function open() {
    pc = new RTCPeerConnection({iceServers: []});
    // Trickle ICE (RFC 8838): every candidate, then "" for end-of-candidates.
    pc.addEventListener("icecandidate", (event) => {
      const candidate = event.candidate && event.candidate.candidate;
      trickled.push(candidate
        ? {candidate, sdpMid: event.candidate.sdpMid}
        : {candidate: "", sdpMid: null});
    });
    pc.addEventListener("connectionstatechange", () => log("connection " + pc.connectionState));
    pc.addEventListener("track", (event) => {
      remoteStream = event.streams[0] || new MediaStream([event.track]);
      // Chromium only feeds a remote WebRTC track into WebAudio while the
      // stream is also attached to a media element.
      document.getElementById("remote").srcObject = remoteStream;
      log("remote track");
    });
    const microphone = await navigator.mediaDevices.getUserMedia({
      audio: {echoCancellation: false, noiseSuppression: false, autoGainControl: false},
    });
    for (const track of microphone.getAudioTracks()) pc.addTrack(track, microphone);
  }

  async function createOffer() {
    await open();
    await pc.setLocalDescription(await pc.createOffer());
    await gatheringComplete();
    return pc.localDescription.sdp;
  }

  // Offer at once, before gathering: candidates follow through takeCandidates().
  async function createOfferTrickle() {
    await open();
    await pc.setLocalDescription(await pc.createOffer());
    return pc.localDescription.sdp;
  }

  function takeCandidates() {
    return trickled.splice(0, trickled.length);
  }

  async function acceptOffer(sdp) {
    await open();
    await pc.setRemoteDescription({type: "offer", sdp});
    await pc.setLocalDescription(await pc.createAnswer());
    await gatheringComplete();
    return pc.localDescription.sdp;
  }

  async function acceptAnswer(sdp) {
    await pc.setRemoteDescription({type: "answer", sdp});
  }

  function connected(ms) {
    if (pc.connectionState === "connected") return Promise.resolve(pc.connectionState);
    return withTimeout(new Promise((resolve, reject) => {
      pc.addEventListener("connectionstatechange", () => {
        if (pc.connectionState === "connected") resolve(pc.connectionState);
        if (pc.connectionState === "failed") reject(new Error("connection failed"));
      });
    }), ms, "connection");
  }

  // Dominant frequency of the remote audio, averaged over `ms` milliseconds
  // of AnalyserNode snapshots (Web Audio API §1.8).
  async function remotePeak(ms) {
    if (!remoteStream) throw new Error("no remote track");
    if (!audioContext) {
      audioContext = new AudioContext();
      await audioContext.resume();
      analyser = audioContext.createAnalyser();
      analyser.fftSize = 8192;
      analyser.smoothingTimeConstant = 0;
      audioContext.createMediaStreamSource(remoteStream).connect(analyser);
    }
    const bins = new Float32Array(analyser.frequencyBinCount);
    const sums = new Float64Array(analyser.frequencyBinCount);
    const deadline = performance.now() + ms;
    let snapshots = 0;
    let peakRms = 0;
    const wave = new Float32Array(analyser.fftSize);
    while (performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      analyser.getFloatFrequencyData(bins);
      for (let i = 0; i < bins.length; i++) sums[i] += Math.pow(10, bins[i] / 10);
      analyser.getFloatTimeDomainData(wave);
      let energy = 0;
      for (const x of wave) energy += x * x;
      peakRms = Math.max(peakRms, Math.sqrt(energy / wave.length));
      snapshots++;
    }
    let best = 1;
    for (let i = 1; i < sums.length; i++) if (sums[i] > sums[best]) best = i;
    return {
      peakHz: best * audioContext.sampleRate / analyser.fftSize,
      rms: peakRms,
      snapshots,
      contextState: audioContext.state,
    };
  }

  // The parts of getStats() (webrtc-stats §7) the tests look at.
  async function stats() {
    const report = await pc.getStats();
    const codecs = {};
    report.forEach((s) => { if (s.type === "codec") codecs[s.id] = s; });
    const out = {inbound: null, outbound: null, selectedPair: null};
    report.forEach((s) => {
      if (s.type === "transport" && s.selectedCandidatePairId) {
        const pair = report.get(s.selectedCandidatePairId);
        const local = report.get(pair.localCandidateId);
        const remote = report.get(pair.remoteCandidateId);
        out.selectedPair = {
          local: local.address, remote: remote.address, remoteType: remote.candidateType,
        };
      }
      if (s.kind !== "audio") return;
      const codec = codecs[s.codecId] || {};
      if (s.type === "inbound-rtp") {
        out.inbound = {
          packetsReceived: s.packetsReceived,
          bytesReceived: s.bytesReceived,
          mimeType: codec.mimeType,
          payloadType: codec.payloadType,
          clockRate: codec.clockRate,
        };
      } else if (s.type === "outbound-rtp") {
        out.outbound = {
          packetsSent: s.packetsSent,
          mimeType: codec.mimeType,
          payloadType: codec.payloadType,
        };
      }
    });
    return out;
  }

  function close() {
    pc.close();
    log("closed");
  }

  // Run `fn(...args)` for WebDriver's execute-async: the last argument is the
  // completion callback; errors come back as {error: message}.
  function call(fn, args, done) {
    Promise.resolve().then(() => fn(...args)).then(
      (value) => done({value: value === undefined ? null : value}),
      (error) => done({error: String(error && error.stack || error)}));
  }

  return {
    createOffer, createOfferTrickle, takeCandidates, acceptOffer, acceptAnswer,
    connected, remotePeak, stats, close, call,
    events,
    state: () => (pc ? pc.connectionState : "none"),
  };
})();
window.softphone = softphone;
