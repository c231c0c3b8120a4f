/* printscp console: small helpers, no framework, no build step, nothing from the network.
 *
 * - <time datetime="ISO">: shown in the browser's local time (title keeps the UTC value).
 * - printscp.post(url, body) / printscp.request(method, url, body): JSON to the API with
 *   the X-CSRF-Token header taken from the printscp_csrf cookie; resolves to the answer's
 *   JSON, rejects with an Error whose .field names the bad field.
 * - [data-refresh="N"] on an element with an id: the page is fetched again every N s
 *   and that element swapped, for as long as the new page still marks it (the server
 *   drops the attribute when nothing is changing); paused while the tab is hidden or
 *   while the user works inside the element (focus, a ticked checkbox, an open form);
 *   "printscp:updated" is dispatched on document with the new element.  An element
 *   holding controls a page script wires ([data-bulk], [data-action]) is left to it.
 * - [data-method][data-url] on a button: sends that request (after confirm() with the
 *   text of data-confirm, if any), then goes to data-done or reloads the page.
 * - form[data-api="METHOD URL"]: sends the filled fields as JSON; an error is shown in
 *   the form's [role=alert] and the field it names is marked aria-invalid and focused.
 */
(function () {
  "use strict";

  function cookie(name) {
    var parts = document.cookie ? document.cookie.split("; ") : [];
    for (var i = 0; i < parts.length; i++) {
      var eq = parts[i].indexOf("=");
      if (parts[i].slice(0, eq) === name) return decodeURIComponent(parts[i].slice(eq + 1));
    }
    return "";
  }

  function request(method, url, body) {
    var headers = {"Accept": "application/json", "X-CSRF-Token": cookie("printscp_csrf")};
    var init = {method: method, headers: headers, credentials: "same-origin"};
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (answer) {
      return answer.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (!answer.ok) {
          var error = new Error((data && data.error) || (answer.status + " " + answer.statusText));
          error.status = answer.status;
          error.field = data && data.field;
          throw error;
        }
        return data;
      });
    });
  }

  var pad = function (n) { return (n < 10 ? "0" : "") + n; };

  function localTime(el) {
    var iso = el.getAttribute("datetime");
    if (!iso || el.dataset.local) return;
    var when = new Date(iso);
    if (isNaN(when.getTime())) return;
    var text = when.getFullYear() + "-" + pad(when.getMonth() + 1) + "-" + pad(when.getDate());
    if (iso.indexOf("T") > 0 || iso.indexOf(" ") > 0) {
      text += " " + pad(when.getHours()) + ":" + pad(when.getMinutes()) + ":" + pad(when.getSeconds());
    }
    el.textContent = text;
    el.title = iso + " (UTC: " + when.toISOString().replace(".000", "") + ")";
    el.dataset.local = "1";
  }

  function localTimes(root) {
    var times = (root || document).querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) localTime(times[i]);
  }

  function busy(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) return true;
    if (el.querySelector("input[type=checkbox]:checked, details[open] form")) return true;
    return false;
  }

  function refresher(el) {
    var seconds = parseFloat(el.getAttribute("data-refresh"));
    var id = el.id;
    if (!id || !(seconds > 0)) return;
    var timer = setTimeout(function tick() {
      var current = document.getElementById(id);
      if (!current || !current.hasAttribute("data-refresh")) return;
      if (document.hidden || busy(current)) {
        timer = setTimeout(tick, seconds * 1000);
        return;
      }
      fetch(location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
        .then(function (answer) { return answer.ok ? answer.text() : Promise.reject(answer.status); })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.getElementById(id);
          var now = document.getElementById(id);
          if (!fresh || !now || busy(now)) { timer = setTimeout(tick, seconds * 1000); return; }
          now.replaceWith(fresh);
          enhance(fresh);
          document.dispatchEvent(new CustomEvent("printscp:updated", {detail: fresh}));
          if (fresh.hasAttribute("data-refresh")) refresher(fresh);
        })
        .catch(function () { timer = setTimeout(tick, seconds * 2000); });
    }, seconds * 1000);
    return timer;
  }

  function say(where, message, kind) {
    if (!where) { if (message) window.alert(message); return; }
    where.textContent = message || "";
    where.className = "notice " + (kind || "error");
    where.hidden = !message;
  }

  function actionButton(button) {
    button.addEventListener("click", function (event) {
      event.preventDefault();
      var question = button.getAttribute("data-confirm");
      if (question && !window.confirm(question)) return;
      var status = document.getElementById(button.getAttribute("data-status") || "status");
      button.disabled = true;
      request(button.getAttribute("data-method"), button.getAttribute("data-url"))
        .then(function () {
          var done = button.getAttribute("data-done");
          if (done) location.assign(done); else location.reload();
        })
        .catch(function (error) {
          button.disabled = false;
          say(status, error.message, "error");
        });
    });
  }

  function apiForm(form) {
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var spec = form.getAttribute("data-api").split(" ");
      var body = {};
      var fields = form.elements;
      for (var i = 0; i < fields.length; i++) {
        var f = fields[i];
        if (!f.name || f.disabled) continue;
        f.removeAttribute("aria-invalid");
        if ((f.type === "checkbox" || f.type === "radio") && !f.checked) continue;
        if (f.value !== "") body[f.name] = f.value;
      }
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) return;
      var alert = form.querySelector("[role=alert]");
      say(alert, "");
      request(spec[0], spec[1], body)
        .then(function () {
          var done = form.getAttribute("data-done");
          if (done) location.assign(done); else location.reload();
        })
        .catch(function (error) {
          say(alert, error.message, "error");
          var name = (error.field || "").split(".").pop();
          var bad = name && form.elements.namedItem(name);
          if (bad && bad.focus) { bad.setAttribute("aria-invalid", "true"); bad.focus(); }
        });
    });
  }

  function enhance(root) {
    root = root || document;
    localTimes(root);
    var buttons = root.querySelectorAll("[data-method][data-url]");
    for (var i = 0; i < buttons.length; i++) actionButton(buttons[i]);
    var forms = root.querySelectorAll("form[data-api]");
    for (var j = 0; j < forms.length; j++) apiForm(forms[j]);
    var confirms = root.querySelectorAll("form[data-confirm]:not([data-api])");
    for (var k = 0; k < confirms.length; k++) {
      confirms[k].addEventListener("submit", function (event) {
        if (!window.confirm(event.currentTarget.getAttribute("data-confirm"))) event.preventDefault();
      });
    }
  }

  window.printscp = {
    cookie: cookie,
    request: request,
    post: function (url, body) { return request("POST", url, body === undefined ? {} : body); },
    del: function (url) { return request("DELETE", url); },
    localTimes: localTimes,
    enhance: enhance,
    refresher: refresher,
  };

  // A thumbnail the server cannot render (404): a grey box saying so, not a broken image.
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (!img || img.tagName !== "IMG" || !img.classList.contains("thumb")) return;
    var box = document.createElement("span");
    box.className = img.className + " missing";
    box.textContent = img.getAttribute("data-missing") || "no image";
    img.replaceWith(box);
  }, true);

  document.addEventListener("DOMContentLoaded", function () {
    enhance(document);
    // An element whose controls a page script wires itself ([data-bulk], [data-action])
    // is refreshed by that script: swapping it here would leave its buttons unwired.
    var live = document.querySelectorAll("[data-refresh]");
    for (var i = 0; i < live.length; i++) {
      if (!live[i].querySelector("[data-bulk], [data-action]")) refresher(live[i]);
    }
  });
})();
