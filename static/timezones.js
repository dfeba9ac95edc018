// Time-zone suggestions on the partner page. The page lists a few common zones in
// <datalist id="zones" data-all="URL">; the first time a field using that list gets the
// focus, every zone is fetched from URL (cached by the browser) and added. Without
// JavaScript the short list and typing a zone name still work; the server checks the name.
(function () {
  var filled = false;
  document.addEventListener("focusin", function (event) {
    var input = event.target;
    if (filled || !input.getAttribute || !input.getAttribute("list")) return;
    var list = document.getElementById(input.getAttribute("list"));
    if (!list || !list.getAttribute("data-all")) return;
    filled = true;
    fetch(list.getAttribute("data-all"), { credentials: "omit" })
      .then(function (response) { return response.ok ? response.json() : []; })
      .then(function (zones) {
        var have = {};
        Array.prototype.forEach.call(list.options, function (option) { have[option.value] = true; });
        var fragment = document.createDocumentFragment();
        zones.forEach(function (zone) {
          if (have[zone]) return;
          var option = document.createElement("option");
          option.value = zone;
          fragment.appendChild(option);
        });
        list.appendChild(fragment);
      })
      .catch(function () { filled = false; });
  });
})();
