// The care professional's page: a "print" button for the session summary. Without this
// script the button stays hidden and the browser's own print does the same (the page's
// print stylesheet, practitioner.css, prints the summary on A4).
(function () {
  'use strict';
  document.querySelectorAll('button[data-print]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () { window.print(); });
  });
}());
