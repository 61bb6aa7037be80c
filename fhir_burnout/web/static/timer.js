// A guided timer for timed exercises. The page works without it (it says how long the
// exercise takes); with it, a start/pause button counts down. The visible clock is not a
// live region (a screen reader would read every second); a separate polite live region
// says how many minutes are left each minute, and when the time is up. No animation.
(function () {
  'use strict';
  document.querySelectorAll('[data-timer-seconds]').forEach(function (box) {
    var total = parseInt(box.getAttribute('data-timer-seconds'), 10);
    var left = total;
    var clock = box.querySelector('.timer-clock');
    var button = box.querySelector('.timer-button');
    var status = box.querySelector('.timer-status');
    var texts = JSON.parse(box.getAttribute('data-timer-texts'));
    var tick = null;
    function show() {
      var m = Math.floor(left / 60), s = left % 60;
      clock.textContent = m + ':' + (s < 10 ? '0' : '') + s;
    }
    function stop() {
      clearInterval(tick);
      tick = null;
      button.textContent = left > 0 ? texts.resume : texts.again;
    }
    button.hidden = false;
    button.addEventListener('click', function () {
      if (tick) { stop(); status.textContent = texts.paused; return; }
      if (left <= 0) { left = total; }
      button.textContent = texts.pause;
      status.textContent = texts.started;
      tick = setInterval(function () {
        left -= 1;
        show();
        if (left <= 0) { stop(); status.textContent = texts.done; }
        else if (left % 60 === 0) { status.textContent = texts.minutes[left / 60]; }
      }, 1000);
    });
    show();
  });
})();
