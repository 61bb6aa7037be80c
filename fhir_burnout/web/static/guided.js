// Guided exercises: one instruction at a time, a breathing pacer, a gentle end signal.
//
// The page works without this script: it says how long the exercise takes, and the
// exercise's own text gives the steps. The guided mode's heading, steps and controls are
// hidden in the HTML, so that a page whose script is off or fails to load shows neither
// the steps twice nor a button that does nothing. This script shows the guided mode: the
// current step from the hidden list (a polite live region, so a screen reader says each
// new step once), a circle that grows while you breathe in and shrinks while you breathe
// out (with prefers-reduced-motion: no circle, a count instead: "Adem in... 4, 3, 2, 1"),
// a clock (role=timer, not live: it would be read every second), a polite status that
// says the minutes left each minute, and at the end a soft sound (WebAudio, can be turned
// off) and a short vibration where the device has one. The screen stays on while it runs
// (Screen Wake Lock, where offered). Spoken guidance, off by default: the content's
// recording when it has one, else the device's own voice (speechSynthesis, in the page's
// language).
//
// Time is measured with Date.now(), not by counting ticks: a phone that throttles timers
// (screen off, another tab) is still at the right step when the client looks again.
(function () {
  'use strict';
  var VOICES = { nl: 'nl-NL', en: 'en-GB' };
  var reduced = window.matchMedia ? window.matchMedia('(prefers-reduced-motion: reduce)') : null;

  function guided(box) {
    var texts = JSON.parse(box.getAttribute('data-texts'));
    var total = parseInt(box.getAttribute('data-seconds'), 10) * 1000;
    var inMs = (parseInt(box.getAttribute('data-breathe-in'), 10) || 0) * 1000;
    var outMs = (parseInt(box.getAttribute('data-breathe-out'), 10) || 0) * 1000;
    var lang = box.getAttribute('data-lang') || document.documentElement.lang;
    var list = box.querySelector('.guide-steps');
    var steps = Array.prototype.map.call(box.querySelectorAll('.guide-steps li'), function (li) {
      return {
        ms: parseInt(li.getAttribute('data-seconds'), 10) * 1000,
        text: li.textContent.trim(),
        pace: li.hasAttribute('data-pace'),
        label: li.getAttribute('data-label')
      };
    });
    var q = function (selector) { return box.querySelector(selector); };
    var title = q('#guide-title'), player = q('.guide-player');
    var clock = q('.timer-clock'), status = q('.timer-status');
    var button = q('.timer-button'), stopButton = q('.guide-stop');
    var number = q('.guide-step-number'), stepText = q('.guide-step-text');
    var pacer = q('.guide-pacer'), circle = q('.guide-circle'), breath = q('.guide-breath');
    var sound = q('.guide-sound'), speech = q('.guide-speech'), audio = q('.guide-audio');
    var canSpeak = 'speechSynthesis' in window && 'SpeechSynthesisUtterance' in window;

    var elapsed = 0, since = null, tick = null, frame = null;
    var shownStep = -1, shownPhase = '', shownCount = -1, spokenMinute = null;
    var lock = null, sounds = null;

    function now() { return Math.min(total, elapsed + (since === null ? 0 : Date.now() - since)); }
    function running() { return since !== null; }

    function stepAt(ms) {
      var start = 0;
      for (var i = 0; i < steps.length; i += 1) {
        if (ms < start + steps[i].ms || i === steps.length - 1) {
          return { index: i, into: ms - start };
        }
        start += steps[i].ms;
      }
      return null;
    }

    // Where in a breath: 'in' or 'out', how far (0..1) and the whole seconds left in it.
    function breathAt(into) {
      var t = into % (inMs + outMs);
      var phase = t < inMs ? 'in' : 'out';
      var length = phase === 'in' ? inMs : outMs, done = phase === 'in' ? t : t - inMs;
      return { phase: phase, part: done / length, left: Math.ceil((length - done) / 1000) };
    }

    function say(text) {
      if (!speech || !speech.checked || audio || !canSpeak || !running()) { return; }
      window.speechSynthesis.cancel();
      var words = new window.SpeechSynthesisUtterance(text);
      words.lang = VOICES[lang] || lang;
      var voice = window.speechSynthesis.getVoices().filter(function (v) {
        return v.lang && v.lang.toLowerCase().indexOf(lang) === 0;
      })[0];
      if (voice) { words.voice = voice; }
      words.rate = 0.9;
      window.speechSynthesis.speak(words);
    }

    function showStep(ms) {
      var at = stepAt(ms);
      if (!at) { return null; }
      if (at.index !== shownStep) {
        shownStep = at.index;
        number.textContent = steps[at.index].label;
        stepText.textContent = steps[at.index].text;
        say(steps[at.index].text);
      }
      return at;
    }

    function showBreath(at) {
      var pacing = at && steps[at.index].pace && inMs > 0 && outMs > 0;
      if (!pacer) { return; }
      pacer.hidden = !pacing || (reduced && reduced.matches);
      breath.hidden = !pacing;
      if (!pacing) { shownPhase = ''; return; }
      var b = breathAt(at.into);
      var word = b.phase === 'in' ? texts.breathe_in : texts.breathe_out;
      if (b.phase !== shownPhase) {
        shownPhase = b.phase;
        shownCount = -1;
        say(word);
      }
      if (reduced && reduced.matches) {
        // No movement: the count, one number a second ("Adem in... 4, 3, 2, 1").
        if (b.left !== shownCount) {
          shownCount = b.left;
          var full = (b.phase === 'in' ? inMs : outMs) / 1000, counted = [];
          for (var n = full; n >= b.left; n -= 1) { counted.push(n); }
          breath.textContent = word + '\u2026 ' + counted.join(', ');
        }
      } else {
        breath.textContent = word;
        // Eased, so the circle slows at the turn as a breath does.
        var eased = (1 - Math.cos(Math.PI * b.part)) / 2;
        var scale = b.phase === 'in' ? 0.5 + 0.5 * eased : 1 - 0.5 * eased;
        circle.style.transform = 'scale(' + scale.toFixed(3) + ')';
      }
    }

    function showClock(ms) {
      var left = Math.ceil((total - ms) / 1000);
      var m = Math.floor(left / 60), s = left % 60;
      clock.textContent = m + ':' + (s < 10 ? '0' : '') + s;
      var minute = Math.ceil(left / 60);
      if (running() && left > 0 && spokenMinute !== null && minute < spokenMinute) {
        status.textContent = texts.minutes[minute];
      }
      spokenMinute = minute;
    }

    function show() {
      var ms = now();
      var at = steps.length ? showStep(ms) : null;
      showBreath(at);
      showClock(ms);
      if (running() && ms >= total) { finish(); }
    }

    function animate() {
      show();
      frame = running() ? window.requestAnimationFrame(animate) : null;
    }

    function keepScreenOn() {
      if (!('wakeLock' in navigator) || lock) { return; }
      navigator.wakeLock.request('screen').then(function (held) {
        lock = held;
        held.addEventListener('release', function () { if (lock === held) { lock = null; } });
        if (!running()) { letScreenSleep(); }
      }).catch(function () { /* not allowed now (low battery, hidden page): no matter */ });
    }

    function letScreenSleep() {
      if (lock) { var held = lock; lock = null; held.release().catch(function () {}); }
    }

    function chime() {
      // Two soft bell-like tones, fading out: heard with closed eyes, not a shock.
      if (!sounds) { return; }
      var start = sounds.currentTime + 0.05;
      [523.25, 659.25].forEach(function (pitch, i) {
        var tone = sounds.createOscillator(), volume = sounds.createGain();
        var at = start + i * 0.6;
        tone.type = 'sine';
        tone.frequency.value = pitch;
        volume.gain.setValueAtTime(0.0001, at);
        volume.gain.exponentialRampToValueAtTime(0.2, at + 0.08);
        volume.gain.exponentialRampToValueAtTime(0.0001, at + 2.5);
        tone.connect(volume).connect(sounds.destination);
        tone.start(at);
        tone.stop(at + 2.6);
      });
    }

    function endSignal() {
      if (sound.checked) { chime(); }
      if (navigator.vibrate) { navigator.vibrate([200, 100, 200]); }
      box.setAttribute('data-ended', sound.checked ? 'sound' : 'quiet');
    }

    function halt() {
      if (running()) { elapsed = now(); since = null; }
      clearInterval(tick);
      tick = null;
      if (frame !== null) { window.cancelAnimationFrame(frame); frame = null; }
      if (audio) { audio.pause(); }
      if (canSpeak) { window.speechSynthesis.cancel(); }
      letScreenSleep();
    }

    function finish() {
      halt();
      show();
      button.textContent = texts.again;
      stopButton.hidden = true;
      status.textContent = texts.done;
      endSignal();
    }

    function start() {
      if (now() >= total) { reset(); }
      // Made on the tap: a browser only lets a page make sound after the person asked.
      var Sounds = window.AudioContext || window.webkitAudioContext;
      if (!sounds && Sounds) { sounds = new Sounds(); }
      if (sounds && sounds.state === 'suspended') { sounds.resume(); }
      since = Date.now();
      box.removeAttribute('data-ended');
      button.textContent = texts.pause;
      stopButton.hidden = false;
      status.textContent = texts.started;
      shownStep = -1;  // say the step again when speech is on
      if (audio && speech.checked) { audio.currentTime = elapsed / 1000; audio.play().catch(function () {}); }
      keepScreenOn();
      tick = setInterval(show, 250);
      animate();
    }

    function reset() {
      elapsed = 0;
      shownStep = -1;
      spokenMinute = null;
      if (audio) { audio.currentTime = 0; }
    }

    button.addEventListener('click', function () {
      if (running()) {
        halt();
        button.textContent = texts.resume;
        status.textContent = texts.paused;
      } else {
        start();
      }
    });
    stopButton.addEventListener('click', function () {
      halt();
      reset();
      show();
      button.textContent = texts.again;
      stopButton.hidden = true;
      status.textContent = texts.stopped;
    });
    if (speech && (audio || canSpeak)) {
      speech.closest('label').hidden = false;
      speech.addEventListener('change', function () {
        if (audio) {
          if (speech.checked && running()) {
            audio.currentTime = now() / 1000;
            audio.play().catch(function () {});
          } else { audio.pause(); }
        } else if (speech.checked) {
          shownStep = -1;
          show();
        } else if (canSpeak) {
          window.speechSynthesis.cancel();
        }
      });
    }
    document.addEventListener('visibilitychange', function () {
      // The browser lets go of the lock when the page is hidden; ask again on return.
      if (document.visibilityState === 'visible' && running()) { keepScreenOn(); }
    });
    if (reduced && reduced.addEventListener) { reduced.addEventListener('change', show); }
    if (list) { list.hidden = true; }
    if (audio) { audio.hidden = true; }
    title.hidden = false;
    box.setAttribute('aria-labelledby', title.id);
    player.hidden = false;
    show();
  }

  document.querySelectorAll('[data-guide]').forEach(guided);
})();
