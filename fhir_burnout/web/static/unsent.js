// An unsent copy of a questionnaire's answers, kept in this browser as the client types, so
// a reload, a lost connection or a server that could not store them loses nothing.
// - Every page: the server names the forms whose answers it stored since the last page
//   (<meta name="stored-forms">); their copies go, so no answers stay behind in the browser.
// - A form page: the copy is put back when the page shows the same answers the copy was
//   typed on top of (data-answers-version); when the server holds newer answers, the copy
//   is stale and goes. A page that shows what was just posted (data-posted) is newer than
//   any copy: nothing is put back, and the copy becomes what the page shows.
// Without this script the forms work the same; the server keeps drafts on its own.
(function () {
  'use strict';
  var PREFIX = 'fhir-burnout:unsent:';
  var SKIP = ['csrf_token', 'action', 'questionnaire', 'answers_version'];
  var storage;
  try { storage = window.localStorage; } catch (e) { return; }  // blocked: nothing to do
  if (!storage) { return; }

  var stored = document.querySelector('meta[name="stored-forms"]');
  (stored ? stored.getAttribute('content') : '').split(' ').forEach(function (path) {
    if (path) { storage.removeItem(PREFIX + path); }
  });

  var form = document.querySelector('form[data-questionnaire]');
  if (!form) { return; }
  var key = PREFIX + form.getAttribute('action');
  var version = form.getAttribute('data-answers-version') || '';

  function fields() {
    return Array.prototype.filter.call(form.elements, function (field) {
      return field.name && field.type !== 'hidden' && field.type !== 'submit' &&
        SKIP.indexOf(field.name) < 0;
    });
  }

  function save() {
    var values = {};
    fields().forEach(function (field) {
      var list = values[field.name] = values[field.name] || [];
      if (field.type === 'radio' || field.type === 'checkbox') {
        if (field.checked) { list.push(field.value); }
      } else {
        list.push(field.value);
      }
    });
    try {
      storage.setItem(key, JSON.stringify({v: version, values: values}));
    } catch (e) { /* full or not allowed: the server's draft still counts */ }
  }

  function restore(copy) {
    var changed = false;
    var seen = {};
    fields().forEach(function (field) {
      var list = copy.values[field.name];
      if (!list) { return; }
      if (field.type === 'radio' || field.type === 'checkbox') {
        var on = list.indexOf(field.value) >= 0;
        changed = changed || field.checked !== on;
        field.checked = on;
      } else {
        var n = seen[field.name] = (seen[field.name] || 0) + 1;
        var value = list[n - 1] === undefined ? field.value : list[n - 1];
        changed = changed || field.value !== value;
        field.value = value;
      }
    });
    if (changed) {
      form.dispatchEvent(new Event('change'));  // enableWhen follows the answers put back
      var note = document.querySelector('.unsent-restored');
      if (note) { note.hidden = false; }
    }
  }

  var copy = null;
  try { copy = JSON.parse(storage.getItem(key) || 'null'); } catch (e) { copy = null; }
  if (form.hasAttribute('data-posted')) {
    save();
  } else if (copy && copy.v === version && copy.values) {
    restore(copy);
  } else if (copy) {
    storage.removeItem(key);
  }
  form.addEventListener('input', save);
  form.addEventListener('change', save);
})();
