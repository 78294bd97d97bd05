// Sets the theme before the first paint (see frontend/src/theme.rs): the person's saved
// pick, else the system's preference, which is followed as it changes until they pick.
(function () {
  var root = document.documentElement;
  var query = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function saved() {
    try { return localStorage.getItem("troupe-theme"); } catch (e) { return null; }
  }
  function apply() {
    var theme = saved();
    if (theme !== "dark" && theme !== "light") {
      theme = query && query.matches ? "dark" : "light";
    }
    root.setAttribute("data-theme", theme);
  }
  apply();
  if (query && query.addEventListener) {
    query.addEventListener("change", function () { if (!saved()) { apply(); } });
  }
})();
