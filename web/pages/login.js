// Log in or register.
import { inWords, login, register } from "/api.js";
import { errorBox } from "/pages/common.js";
import { h, mount } from "/ui.js";

export function loginPage(done) {
  const err = errorBox();
  const form = (title, fields, action, testid) => {
    const f = h("form", { testid, onsubmit: async (e) => {
      e.preventDefault();
      err.textContent = "";
      const v = Object.fromEntries(new FormData(f));
      try { await action(v); done(); } catch (x) { err.textContent = inWords(x); }
    } }, h("h2", {}, title), ...fields, h("button", { class: "primary", type: "submit" }, title));
    return f;
  };
  const field = (label, name, type, extra = {}) => h("label", {}, label, h("input", { name, type, required: true, ...extra }));
  mount(
    h("h1", {}, "TradeSense"),
    h("div", { class: "grid" },
      h("section", { class: "panel" }, form("Log in", [
        field("Email", "email", "email", { autocomplete: "username" }),
        field("Password", "password", "password", { autocomplete: "current-password" }),
      ], (v) => login(v.email, v.password), "login-form")),
      h("section", { class: "panel" }, form("Register", [
        field("Name", "name", "text", { autocomplete: "name", required: false }),
        field("Email", "email", "email", { autocomplete: "email" }),
        field("Password (12 characters or more)", "password", "password", { autocomplete: "new-password", minlength: "12" }),
      ], (v) => register(v.email, v.password, v.name || ""), "register-form"))),
    err);
}
