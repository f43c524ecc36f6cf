// The console's entry: the session, then the page the URL fragment names.
import { logout, resume, user } from "/api.js";
import { stopAll } from "/live.js";
import { adminPage } from "/pages/admin.js";
import { breachPage } from "/pages/breach.js";
import { dashboardPage } from "/pages/dashboard.js";
import { loginPage } from "/pages/login.js";
import { homePage } from "/pages/plans.js";
import { h, mount } from "/ui.js";

const go = (hash) => { if (location.hash === hash) route(); else location.hash = hash; };

async function route() {
  stopAll();
  const signedIn = user() || (await resume());
  document.getElementById("logout").hidden = !signedIn;
  for (const el of document.querySelectorAll(".admin-only")) el.hidden = signedIn?.role !== "ADMIN";
  if (!signedIn) { loginPage(() => go("#/")); return; }
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
  let m;
  try {
    if ((m = path.match(/^\/c\/([0-9a-f-]{36})\/breach$/))) await breachPage(m[1]);
    else if ((m = path.match(/^\/c\/([0-9a-f-]{36})$/))) await dashboardPage(m[1], go);
    else if (path === "/admin") await adminPage();
    else await homePage(go);
  } catch (err) {
    mount(h("p", { class: "error", role: "alert" }, String(err.message || err)));
  }
}

document.getElementById("logout").addEventListener("click", async () => { await logout(); go("#/"); });
window.addEventListener("hashchange", route);
route();
