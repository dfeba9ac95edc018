// The partner page's small helpers; the page works without them (no inline script: the
// CSP forbids it).
(function () {
  // After a refused form the page comes back at its section (the form's #fragment); move
  // the focus to the error summary (or the report, or the first invalid field) so that
  // keyboard and screen-reader users start where the problem is.
  function focusFirstProblem() {
    var target = document.querySelector("[data-focus-on-load]") ||
      document.querySelector("[aria-invalid=true]");
    if (!target) return;
    var details = target.closest("details");
    if (details) details.open = true;
    target.focus(); // scrolls only when it is not in view already
  }

  // Copy buttons: <button data-copy-from="ID" data-copied="WORD" hidden> copies the text of
  // the element ID. They are hidden in the HTML, so without this script none shows.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain http (no Clipboard API): select a scratch field and copy the selection.
    return new Promise(function (resolve, reject) {
      var scratch = document.createElement("textarea");
      scratch.value = text;
      scratch.setAttribute("readonly", "");
      scratch.className = "copy-scratch";
      document.body.appendChild(scratch);
      scratch.select();
      var copied = false;
      try { copied = document.execCommand("copy"); } catch (error) { copied = false; }
      document.body.removeChild(scratch);
      if (copied) { resolve(); } else { reject(new Error("copy refused")); }
    });
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function setUpCopyButtons() {
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy-from]"), function (button) {
      var source = document.getElementById(button.getAttribute("data-copy-from"));
      if (!source) return;
      var label = button.textContent;
      button.hidden = false;
      button.addEventListener("click", function () {
        copyText(source.textContent.trim()).then(function () {
          button.textContent = button.getAttribute("data-copied") || label;
          window.setTimeout(function () { button.textContent = label; }, 2000);
        }, function () {
          selectText(source); // the partner can still copy it by hand
        });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpCopyButtons);
  } else {
    setUpCopyButtons();
  }
  // After load: the browser's own move to the #fragment (which blurs whatever has the
  // focus) is done by then.
  window.addEventListener("load", function () { window.setTimeout(focusFirstProblem, 0); });
})();
