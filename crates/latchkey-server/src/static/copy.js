// Progressive enhancement: a Copy button on every <pre data-copy>. Without JavaScript the
// text stays selectable.
document.querySelectorAll("pre[data-copy]").forEach(function (pre) {
  var b = document.createElement("button");
  b.type = "button";
  b.className = "copy small";
  b.textContent = "Copy";
  b.addEventListener("click", function () {
    navigator.clipboard.writeText(pre.textContent.trim()).then(function () {
      b.textContent = "Copied";
      setTimeout(function () { b.textContent = "Copy"; }, 1500);
    });
  });
  pre.parentNode.insertBefore(b, pre.nextSibling);
});
