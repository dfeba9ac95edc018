// Staff pages' small helpers; every page works without them (no inline script: the CSP
// forbids it).

// Copy buttons: <button data-copy="ID"> copies the value of the input with that id.
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var input = document.getElementById(button.getAttribute("data-copy"));
  if (!input) return;
  input.select();
  var done = function () { button.textContent = "Copied"; };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(input.value).then(done, function () { document.execCommand("copy"); done(); });
  } else {
    document.execCommand("copy");
    done();
  }
});

// A refused form comes back at the top of its page, which on a phone can be a screen or
// more above the field at fault: move the focus (and so the view) to the first field marked
// invalid, opening a folded section that holds it.
document.addEventListener("DOMContentLoaded", function () {
  var invalid = document.querySelector("main [aria-invalid=true]");
  if (!invalid) return;
  var details = invalid.closest("details");
  if (details) details.open = true;
  invalid.focus();
});
