// The rules page: put the cursor where the rule book found a problem, or bring a
// backtest's figures into view. The page works without it.
(() => {
  "use strict";
  const text = document.getElementById("rule-text");
  const line = Number(text?.dataset.errorLine);
  const column = Number(text?.dataset.errorColumn);
  if (text && line > 0 && column > 0) {
    const before = text.value.split("\n").slice(0, line - 1);
    const at = Math.min(
      before.reduce((sum, each) => sum + each.length + 1, 0) + column - 1,
      text.value.length,
    );
    text.focus();
    text.setSelectionRange(at, Math.min(at + 1, text.value.length));
    return;
  }
  const invalid = document.querySelector('[aria-invalid="true"]');
  if (invalid) {
    invalid.focus();
    return;
  }
  document.getElementById("backtest")?.scrollIntoView({ block: "nearest" });
})();
