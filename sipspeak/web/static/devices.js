// Device check (§3 "Профиль"): list microphones and speakers, show the microphone level,
// play a test tone on the chosen speaker. Everything stays in the browser.
(function () {
  "use strict";
  var panel = document.getElementById("devices");
  if (!panel) { return; }
  var status = document.getElementById("device-status");
  var mics = document.getElementById("microphones");
  var speakers = document.getElementById("speakers");
  var meter = document.getElementById("mic-level");
  var media = navigator.mediaDevices;

  function say(text) { status.textContent = text; }

  function fill(select, devices, kind) {
    select.innerHTML = "";
    devices.filter(function (d) { return d.kind === kind; }).forEach(function (d, i) {
      var option = document.createElement("option");
      option.value = d.deviceId;
      option.textContent = d.label || (kind + " " + (i + 1));
      select.appendChild(option);
    });
  }

  function list() {
    return media.enumerateDevices().then(function (devices) {
      fill(mics, devices, "audioinput");
      fill(speakers, devices, "audiooutput");
    });
  }

  if (!media || !media.enumerateDevices) {
    say(panel.getAttribute("data-unsupported"));
    return;
  }
  list().catch(function () { say(panel.getAttribute("data-no-access")); });

  document.getElementById("test-microphone").addEventListener("click", function () {
    var constraints = {audio: mics.value ? {deviceId: {exact: mics.value}} : true};
    media.getUserMedia(constraints).then(function (stream) {
      list();
      var context = new AudioContext();
      var analyser = context.createAnalyser();
      context.createMediaStreamSource(stream).connect(analyser);
      var data = new Uint8Array(analyser.fftSize);
      var frames = 0;
      say(panel.getAttribute("data-level"));
      (function tick() {
        analyser.getByteTimeDomainData(data);
        var peak = 0;
        for (var i = 0; i < data.length; i++) { peak = Math.max(peak, Math.abs(data[i] - 128) / 128); }
        meter.value = peak;
        frames += 1;
        if (frames < 300) { window.requestAnimationFrame(tick); }
        else { stream.getTracks().forEach(function (t) { t.stop(); }); context.close(); }
      })();
    }, function () { say(panel.getAttribute("data-no-access")); });
  });

  document.getElementById("test-speaker").addEventListener("click", function () {
    var context = new AudioContext();
    var oscillator = context.createOscillator();
    var destination = context.createMediaStreamDestination();
    oscillator.frequency.value = 440;
    oscillator.connect(destination);
    var audio = new Audio();
    audio.srcObject = destination.stream;
    var play = function () {
      oscillator.start();
      audio.play();
      say(panel.getAttribute("data-playing"));
      window.setTimeout(function () { oscillator.stop(); audio.pause(); context.close(); }, 1000);
    };
    if (speakers.value && audio.setSinkId) { audio.setSinkId(speakers.value).then(play, play); }
    else { play(); }
  });
})();
