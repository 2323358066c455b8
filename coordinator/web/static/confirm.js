// Confirmation before consequential actions (escalate, close, disable a user): forms
// with data-confirm ask first in the page's own <dialog>. Without JavaScript the form
// simply posts.

export function confirmForms(root = document) {
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog || typeof dialog.showModal !== "function") return;
  const message = dialog.querySelector(".confirm-message");
  for (const form of root.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.confirmed === "yes") {
        delete form.dataset.confirmed;
        return;
      }
      event.preventDefault();
      const submitter = event.submitter;
      message.textContent = form.dataset.confirm;
      dialog.returnValue = "";
      dialog.addEventListener(
        "close",
        () => {
          if (dialog.returnValue !== "ok") return;
          form.dataset.confirmed = "yes";
          form.requestSubmit(submitter ?? undefined);
        },
        { once: true },
      );
      dialog.showModal();
    });
  }
}
