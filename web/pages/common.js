// What the pages share.
import { h } from "/ui.js";

export function errorBox() {
  return h("p", { class: "error", role: "alert", testid: "error" });
}
