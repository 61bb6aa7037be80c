// enableWhen live in the browser: questions that do not apply are hidden (and left out of
// what is sent) as soon as the answers they depend on change. The server decides again on
// every send; without this script every question simply shows. Conditions come from the
// page (data-enable-when), already translated to this form's field names and values: `q`
// lists the fields that hold the question's answer as seen from this item (its own entry
// of a repeating group first, as R4's "nearest occurrence" rule says).
(function () {
  'use strict';
  var form = document.querySelector('form[data-questionnaire]');
  if (!form) { return; }
  var items = Array.prototype.slice.call(form.querySelectorAll('[data-enable-when]'));

  function values(names) {
    var found = [];
    Array.prototype.forEach.call(form.elements, function (field) {
      if (names.indexOf(field.name) < 0 || field.disabled) { return; }
      if (field.type === 'radio' || field.type === 'checkbox') {
        if (field.checked) { found.push(field.value); }
      } else if (field.value.trim() !== '') {
        found.push(field.value.trim());
      }
    });
    return found;
  }

  function holds(condition) {
    var given = values(condition.q);
    if (condition.op === 'exists') { return (given.length > 0) === condition.value; }
    if (!given.length) { return false; }
    var wanted = condition.values;  // the field values that count as "equal"
    var number = function (v) { return parseFloat(String(v).replace(',', '.')); };
    return given.some(function (v) {
      if (condition.op === '=') { return wanted.indexOf(v) >= 0; }
      if (condition.op === '!=') { return wanted.indexOf(v) < 0; }
      var a = number(v), w = number(wanted[0]);
      if (isNaN(a) || isNaN(w)) { return false; }
      return condition.op === '>' ? a > w : condition.op === '<' ? a < w :
        condition.op === '>=' ? a >= w : a <= w;
    });
  }

  function update() {
    items.forEach(function (item) {
      var spec = JSON.parse(item.getAttribute('data-enable-when'));
      var outcomes = spec.conditions.map(holds);
      var on = spec.behavior === 'any' ? outcomes.some(Boolean) : outcomes.every(Boolean);
      // A question the server pointed out stays in view, so the client can see why.
      on = on || item.hasAttribute('data-problem');
      item.hidden = !on;
      Array.prototype.forEach.call(item.querySelectorAll('input, textarea, select'), function (f) {
        f.disabled = !on;
      });
    });
  }

  form.addEventListener('change', update);
  form.addEventListener('input', update);
  update();
})();
