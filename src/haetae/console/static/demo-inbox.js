// The demo app's login pop-up: shown as a modal once the page loads, as the app does after
// login. Closing needs no script: the button submits a method="dialog" form.
"use strict";

(function () {
  const popup = document.getElementById("login-popup");
  if (popup && typeof popup.showModal === "function" && !popup.open) {
    popup.showModal();
  }
})();
