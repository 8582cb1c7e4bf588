// vstudio web page: live updates from the manager's event stream, and small enhancements.
// No inline scripts anywhere (the page's Content-Security-Policy forbids them): every
// handler is bound here. Events only say *what* changed; the page then asks its own
// server for the new values of just that job, task or worker, coalescing bursts.
(function () {
  "use strict";

  var pendingJobs = {};      // job id -> set of task ids (or true for "job only")
  var flushTimer = null;
  var listTimer = null;
  var workersTimer = null;
  var mediaTimer = null;
  var logTimer = null;
  var FLUSH_MS = 60;         // a burst of events becomes one request per job

  function $(sel, root) { return (root || document).querySelector(sel); }
  function $all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function csrf() { return document.body.getAttribute("data-csrf") || ""; }

  // ---- event stream -------------------------------------------------------------------
  var stream = null;
  var offlineTimer = null;

  // The manager is away: say so in words (the dot alone is easy to miss), keep the
  // numbers but mark them stale.
  function managerGone() {
    var b = $("#offline");
    if (b && b.hidden) { b.hidden = false; document.body.classList.add("stale"); }
  }
  function managerBack() {
    if (offlineTimer) { clearTimeout(offlineTimer); offlineTimer = null; }
    var b = $("#offline");
    if (b && !b.hidden) { b.hidden = true; document.body.classList.remove("stale"); }
  }

  // The stream's state in words beside the dot (its colour alone says nothing to many).
  function liveText(live, text, on) {
    if (!live) return;
    live.classList.toggle("on", on);
    setText(live, "[data-live-text]", text);
  }

  function connect() {
    if (!document.body.hasAttribute("data-csrf") || !window.EventSource || stream) return;
    var live = $("#live");
    // A job's page needs only that job's events (the server filters them); other pages
    // follow the whole farm.
    var page = $("[data-job-page]");
    var es = stream = new EventSource("/api/events" + (page ? "?job=" + page.getAttribute("data-job-page") : ""));
    var lost = false;
    es.onopen = function () {
      liveText(live, "live", true);
      managerBack();
      if (lost) { lost = false; resync(); }  // events were missed while disconnected
    };
    es.onerror = function () {
      lost = true;
      liveText(live, "reconnecting…", false);
      // A blip (a proxy closing an idle stream) reconnects at once: only a manager that
      // stays away for a few seconds gets the banner.
      if (!offlineTimer) offlineTimer = setTimeout(function () { offlineTimer = null; if (es.readyState !== 1) managerGone(); }, 3000);
    };
    var handler = function (ev) {
      var data;
      try { data = JSON.parse(ev.data); } catch (e) { return; }
      onEvent(ev.type, data);
    };
    es.onmessage = handler;
    ["job", "task", "worker", "jobs", "tasks", "workers", "progress", "log"].forEach(function (t) {
      es.addEventListener(t, handler);
    });
  }

  function disconnect() {
    if (!stream) return;
    stream.close();
    stream = null;
    var live = $("#live");
    liveText(live, "paused", false);
  }

  // A browser opens at most six HTTP/1.1 connections to one server, and every open
  // stream holds one: a tab in the background lets go of its stream and catches up
  // when it is shown again, so many open tabs do not stall each other.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { disconnect(); return; }
    if (!stream) { connect(); resync(); }
  });
  window.addEventListener("pagehide", disconnect);

  function num(v) { var n = parseInt(v, 10); return isNaN(n) ? null : n; }

  function onEvent(type, d) {
    if (type === "resync") { resync(); return; }
    if (!d || typeof d !== "object") return;
    if (type === "worker" && d.cpu !== undefined) { showUsage(d); return; }
    var kind = String(d.kind || d.type || type || "");
    var jobId = num(d.job_id !== undefined ? d.job_id : (d.job && typeof d.job === "object" ? d.job.id : d.job));
    var taskId = num(d.task_id !== undefined ? d.task_id : (d.task && typeof d.task === "object" ? d.task.id : d.task));
    var workerId = num(d.worker_id !== undefined ? d.worker_id : d.worker);
    if (jobId === null && kind.indexOf("job") === 0) jobId = num(d.id);
    if (taskId === null && kind.indexOf("task") === 0) taskId = num(d.id);
    if (workerId === null && kind.indexOf("worker") === 0) workerId = num(d.id);
    if (jobId !== null) noteJob(jobId, taskId);
    if (workerId !== null || kind.indexOf("worker") === 0 || taskId !== null) noteWorkers();
    if (taskId !== null) noteLog(taskId);
    // A job that is not shown appeared or went away: the list's page may change.
    if (jobId !== null && kind.indexOf("job") === 0 && !$('[data-job="' + jobId + '"]')) noteList();
  }

  function noteJob(jobId, taskId) {
    var onPage = $('[data-job="' + jobId + '"]') || $('[data-job-page="' + jobId + '"]');
    if (!onPage) return;
    var set = pendingJobs[jobId] || (pendingJobs[jobId] = {});
    if (taskId !== null) set[taskId] = true;
    if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
  }

  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } });
  }

  function flush() {
    flushTimer = null;
    var jobs = pendingJobs;
    pendingJobs = {};
    var listed = [];
    Object.keys(jobs).forEach(function (jobId) {
      if (!$('[data-job-page="' + jobId + '"]')) { listed.push(jobId); return; }
      // The job's own page: its numbers and the changed tasks' cells.
      var tasks = Object.keys(jobs[jobId]).filter(function (k) { return k !== "all"; });
      var url = "/jobs/" + jobId + "/live";
      if (jobs[jobId].all || tasks.length > 500) url += "?tasks=all";
      else if (tasks.length) url += "?tasks=" + tasks.join(",");
      getJSON(url)
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (s) { if (s) applyJob(jobId, s); })
        .catch(managerGone);
    });
    // Rows of a list: every changed job in one request.
    for (var i = 0; i < listed.length; i += 100) {
      var ids = listed.slice(i, i + 100);
      getJSON("/jobs/live?ids=" + ids.join(","))
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (all) {
          if (!all) return;
          this.forEach(function (jobId) {
            if (all[jobId]) applyJob(jobId, all[jobId]);
            else  // deleted meanwhile: drop its row
              $all('tr[data-job="' + jobId + '"]').forEach(function (tr) { tr.remove(); });
          });
        }.bind(ids))
        .catch(managerGone);
    }
  }

  function setText(root, sel, text) {
    $all(sel, root).forEach(function (el) { if (el.textContent !== text) el.textContent = text; });
  }

  function applyJob(jobId, s) {
    // Only the job's head or list row is searched, never the whole job page: a page of
    // 10,000 grid cells searched for each selector on every update kept the browser busy.
    $all('[data-job="' + jobId + '"]').forEach(function (root) {
      $all("progress[data-progress]", root).forEach(function (p) {
        p.value = s.progress;
        p.setAttribute("aria-valuetext", s.progress.toFixed(1) + "%");
        p.textContent = s.progress.toFixed(1) + "%";
      });
      setText(root, "[data-pct]", s.progress.toFixed(1) + "%");
      setText(root, "[data-frames]", s.frames_done + "/" + s.frames_total);
      setText(root, "[data-elapsed]", s.elapsed_text);
      setText(root, "[data-eta]", s.eta_text);
      setText(root, "[data-reason]", s.reason || "");
      $all("[data-status]", root).forEach(function (el) {
        if (el.textContent !== s.status) { el.textContent = s.status; el.className = "status " + s.status; }
      });
      $all("[data-action]", root).forEach(function (b) {
        var a = b.getAttribute("data-action");
        var allowed = (s.actions || []).indexOf(a) >= 0;
        if (b.disabled === allowed) b.disabled = !allowed;
      });
    });
    var legend = s.counts && $('[data-job-page="' + jobId + '"]') ? $("ul.legend") : null;
    if (legend) {
      // A status no task has any more is left out of the counts: it shows 0, not its last number.
      $all("[data-count]", legend).forEach(function (el) {
        var n = String(s.counts[el.getAttribute("data-count")] || 0);
        if (el.textContent !== n) el.textContent = n;
      });
    }
    if (s.latest) showLatest(s.latest);
    // A task finished: its frames' thumbnails, render times and video are new.
    var media = s.counts && $('[data-job-page="' + jobId + '"]') ? $("#job-media") : null;
    var done = media ? String(s.counts.done || 0) : null;
    if (media && media.getAttribute("data-done") !== done) {
      media.setAttribute("data-done", done);
      noteMedia();
    }
    if (s.tasks) {
      s.tasks.forEach(function (t) {
        var cell = document.getElementById("t" + t[0]);
        if (cell && cell.className.charAt(0) !== t[1]) {
          cell.className = t[1] + (cell.classList.contains("sel") ? " sel" : "");
          // The state in words too (hover and screen readers), not only the colour.
          cell.setAttribute("title", cellLabel(cell));
          if (cell.hasAttribute("aria-label")) cell.setAttribute("aria-label", cellLabel(cell));
        }
        var row = document.getElementById("tr" + t[0]);
        if (row) {
          setText(row, "[data-tstatus]", t[3]);
          setText(row, "[data-tprogress]", t[2].toFixed(0) + "%");
          setText(row, "[data-tworker]", t[4] || "");
        }
      });
    }
  }

  // The newest rendered frame, large: swapped only when a newer output arrives.
  function showLatest(o) {
    var box = $("#latest");
    if (!box || box.getAttribute("data-output") === String(o.id)) return;
    box.setAttribute("data-output", String(o.id));
    var img = $("[data-latest-img]", box);
    img.src = o.url;
    img.alt = "last rendered frame: " + o.caption;
    $("[data-latest-link]", box).href = o.url;
    setText(box, "[data-latest-caption]", o.caption);
    box.hidden = false;
  }

  // Events were dropped (a slow connection): refresh everything shown.
  function resync() {
    $all("[data-job], [data-job-page]").forEach(function (el) {
      var id = el.getAttribute("data-job") || el.getAttribute("data-job-page");
      if (el.hasAttribute("data-job-page")) (pendingJobs[id] = pendingJobs[id] || {}).all = true;
      else noteJob(num(id), null);
    });
    if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
    noteList();
    noteWorkers();
  }

  // A heartbeat's CPU and memory use: only those two cells change, no refresh.
  function showUsage(d) {
    var cell = $('[data-worker="' + num(d.id) + '"] [data-usage]');
    if (!cell) return;
    cell.textContent = "";
    var cpu = document.createElement("span"), mem = document.createElement("span");
    cpu.setAttribute("data-cpu", "");
    mem.setAttribute("data-mem", "");
    cpu.textContent = "CPU " + Math.round(Number(d.cpu)) + "%";
    mem.textContent = "RAM " + Math.round(Number(d.mem)) + "%";
    cell.append(cpu, document.createElement("br"), mem);
  }

  // ---- lists refreshed as a whole fragment (jobs list, workers) -------------------------
  // A redrawn list keeps what the person was doing in it: text typed but not saved, boxes
  // ticked for a bulk action, and the focus (with the caret) stay on the same field of the
  // same row. A field is known by its row (data-job / data-worker), its form's action and
  // its id or name (a button also by its value).
  function fieldKey(f) {
    var row = f.closest("[data-job], [data-worker]");
    var where = row ? (row.getAttribute("data-job") || "w" + row.getAttribute("data-worker")) : "";
    if (f.form) where += " " + (f.form.getAttribute("action") || "");
    var what = f.id || (f.tagName + ":" + (f.name || "") + ":" +
      (/^(checkbox|radio|submit|button)$/.test(f.type) || f.tagName === "BUTTON" ? f.value : ""));
    return where + "|" + what;
  }
  function edited(f) {
    if (f.type === "checkbox" || f.type === "radio") return f.checked !== f.defaultChecked;
    if (f.tagName === "SELECT") return Array.prototype.some.call(f.options, function (o) { return o.selected !== o.defaultSelected; });
    return f.tagName !== "BUTTON" && f.type !== "hidden" && f.value !== f.defaultValue;
  }
  function keepState(el) {
    var kept = { fields: {}, focus: null };
    $all("input, select, textarea", el).forEach(function (f) {
      if (!edited(f)) return;
      kept.fields[fieldKey(f)] = f.tagName === "SELECT" ? f.selectedIndex
        : (f.type === "checkbox" || f.type === "radio") ? f.checked : f.value;
    });
    var a = document.activeElement;
    if (a && a !== el && el.contains(a)) {
      kept.focus = { key: fieldKey(a), start: null, end: null };
      try { kept.focus.start = a.selectionStart; kept.focus.end = a.selectionEnd; } catch (e) { /* no caret */ }
    }
    return kept;
  }
  function restoreState(el, kept) {
    var byKey = {};
    $all("input, select, textarea, button", el).forEach(function (f) { byKey[fieldKey(f)] = f; });
    Object.keys(kept.fields).forEach(function (k) {
      var f = byKey[k], v = kept.fields[k];
      if (!f) return;  // its row went away
      if (f.tagName === "SELECT") f.selectedIndex = v;
      else if (f.type === "checkbox" || f.type === "radio") f.checked = v;
      else { f.value = v; openMenuOf(f); }
    });
    var fo = kept.focus;
    var target = fo && byKey[fo.key];
    if (!target) return;
    openMenuOf(target);
    target.focus({ preventScroll: true });
    if (fo.start !== null && fo.start !== undefined) {
      try { target.setSelectionRange(fo.start, fo.end); } catch (e) { /* a number field */ }
    }
  }
  // A field in a row's closed "More" menu is hidden: the menu opens to show it again (a
  // redrawn row has its menu closed).
  function openMenuOf(f) {
    var d = f.closest ? f.closest("details.more") : null;
    if (d) d.open = true;
  }
  function refreshFragment(sel) {
    var el = $(sel);
    if (!el) return;
    var url = el.getAttribute("data-refresh");
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { if (r.status < 500) managerBack(); return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null || !el.isConnected) return;
        var tmp = document.createElement(el.tagName);
        tmp.innerHTML = html;   // our own server's autoescaped fragment
        var kept = keepState(el);  // as it is now, after the wait for the answer
        el.replaceChildren.apply(el, Array.prototype.slice.call(tmp.childNodes));
        // htmx wires only what it swapped in itself: the new rows' hx-post forms need it,
        // or they post as whole pages.
        if (window.htmx) window.htmx.process(el);
        restoreState(el, kept);
        bindPreviews(el);
      })
      .catch(managerGone);
  }
  function noteList() {
    if (!$("#jobs-body") || listTimer) return;
    listTimer = setTimeout(function () { listTimer = null; refreshFragment("#jobs-body"); }, 500);
  }
  function noteMedia() {
    if (mediaTimer) return;
    mediaTimer = setTimeout(function () { mediaTimer = null; refreshFragment("#job-media"); }, 300);
  }
  function noteWorkers() {
    if (!$("#workers-body") || workersTimer) return;
    workersTimer = setTimeout(function () { workersTimer = null; refreshFragment("#workers-body"); }, 200);
  }

  // ---- task log: open on click, live tail while running -------------------------------
  function noteLog(taskId) {
    var pane = $("#log-pane");
    if (!pane || pane.getAttribute("data-task") !== String(taskId) || logTimer) return;
    logTimer = setTimeout(function () { logTimer = null; tailLog(); }, FLUSH_MS);
  }
  function tailLog() {
    var pane = $("#log-pane");
    if (!pane) return;
    var pre = $("pre", pane);
    var url = pane.getAttribute("data-log") + "?after=" + (pre.getAttribute("data-next") || "0") +
              "&attempt=" + (pre.getAttribute("data-attempt") || "0");
    fetch(url, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (!d || pane.getAttribute("data-log") !== url.split("?")[0]) return;
        var atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        if (d.lines.length) pre.appendChild(document.createTextNode(d.lines.join("\n") + "\n"));
        pre.setAttribute("data-next", String(d.next));
        pre.setAttribute("data-attempt", String(d.attempt));
        setText(pane, "[data-log-status]", d.status);
        var badge = $("[data-log-status]", pane);
        if (badge) badge.className = "status " + d.status;
        if (atEnd) pre.scrollTop = pre.scrollHeight;
      })
      .catch(managerGone);
  }
  function openLog(taskId, focus) {
    var page = $("[data-job-page]");
    var pane = $("#log-pane");
    if (!page || !pane) return false;
    var jobId = page.getAttribute("data-job-page");
    $all(".grid i.sel").forEach(function (c) { c.classList.remove("sel"); });
    var cell = document.getElementById("t" + taskId);
    if (cell) {
      cell.classList.add("sel");
      if (cell.parentElement && cell.parentElement.classList.contains("grid")) rove(cell.parentElement, cell);
    }
    pane.hidden = false;
    pane.setAttribute("data-task", String(taskId));
    pane.setAttribute("data-log", "/jobs/" + jobId + "/tasks/" + taskId + "/log");
    setText(pane, "[data-log-title]", "Log of task " + taskId);
    var pre = $("pre", pane);
    pre.textContent = "";
    pre.setAttribute("data-next", "0");
    pre.setAttribute("data-attempt", "0");
    tailLog();
    // Focus on the log itself: arrow keys, Page Up/Down and Home/End then scroll it.
    if (focus) pre.focus();
    history.replaceState(null, "", "#task-" + taskId);
    return true;
  }

  // Thumbnails open a larger preview (bound again when the media part is redrawn).
  function bindPreviews(root) {
    $all("img[data-preview]", root).forEach(function (img) {
      var open = function (e) {
        var dlg = $("#preview");
        if (!dlg || !dlg.showModal) return;
        e.preventDefault();
        $("img", dlg).src = img.getAttribute("data-preview");
        $("img", dlg).alt = img.alt;
        setText(dlg, "[data-caption]", img.alt);
        dlg.showModal();
      };
      var link = img.closest("a");
      (link || img).addEventListener("click", open);
    });
  }

  // ---- task grid by keyboard ------------------------------------------------------------
  // Each block's grid is one tab stop (a roving tabindex: only one cell carries it, so
  // 10,000 cells add no markup); arrow keys move it, Home/End go to the ends, Enter or
  // Space opens the task's log and leaves the focus on the cell for the next one.
  var CELL_WORDS = { q: "queued", w: "waiting", r: "running", d: "done", f: "failed", p: "paused", c: "canceled" };
  function cellLabel(cell) {
    // The title was written with the page; the class follows the live state.
    var what = (cell.getAttribute("title") || "").replace(/, [a-z]+$/, "");
    return what + ", " + (CELL_WORDS[cell.className.charAt(0)] || "queued");
  }
  function rove(grid, cell) {
    var old = $('i[tabindex="0"]', grid);
    if (old && old !== cell) {
      old.removeAttribute("tabindex");
      old.removeAttribute("role");
      old.removeAttribute("aria-label");
    }
    cell.tabIndex = 0;
    cell.setAttribute("role", "button");
    cell.setAttribute("aria-label", cellLabel(cell));
  }
  function perRow(grid) {
    var first = grid.firstElementChild, n = 0;
    for (var c = first; c && c.offsetTop === first.offsetTop; c = c.nextElementSibling) n++;
    return Math.max(1, n);
  }
  function gridKey(e) {
    var grid = e.currentTarget, cell = e.target;
    if (!cell || cell.tagName !== "I" || !cell.id) return;
    var cells = grid.children, at = Array.prototype.indexOf.call(cells, cell), to = at;
    switch (e.key) {
      case "ArrowRight": to = at + 1; break;
      case "ArrowLeft": to = at - 1; break;
      // No row below (or above): the focus stays, as in a table.
      case "ArrowDown": to = at + perRow(grid); if (to >= cells.length) to = at; break;
      case "ArrowUp": to = at - perRow(grid); if (to < 0) to = at; break;
      case "PageDown": to = at + perRow(grid) * 10; break;
      case "PageUp": to = at - perRow(grid) * 10; break;
      case "Home": to = 0; break;
      case "End": to = cells.length - 1; break;
      case "Enter": case " ":
        e.preventDefault();
        openLog(cell.id.slice(1), false);
        return;
      default: return;
    }
    e.preventDefault();  // the keys move in the grid, not scroll the page
    to = Math.max(0, Math.min(cells.length - 1, to));
    if (to === at) return;
    rove(grid, cells[to]);
    cells[to].focus();
  }

  function bind(root) {
    $all(".grid", root).forEach(function (grid) {
      if (grid.hasAttribute("data-bound")) return;
      grid.setAttribute("data-bound", "");
      grid.addEventListener("click", function (e) {
        var t = e.target;
        if (!t || t.tagName !== "I" || !t.id) return;
        rove(grid, t);
        openLog(t.id.slice(1), false);
      });
      grid.addEventListener("keydown", gridKey);
      if (grid.firstElementChild && !$('i[tabindex="0"]', grid)) rove(grid, grid.firstElementChild);
    });
    $all("a[data-task-log]", root).forEach(function (a) {
      a.addEventListener("click", function (e) {
        if (openLog(a.getAttribute("data-task-log"), true)) e.preventDefault();
      });
    });
    bindPreviews(root);
    var dlg = $("#preview");
    if (dlg && !dlg.hasAttribute("data-bound")) {
      dlg.setAttribute("data-bound", "");
      dlg.addEventListener("click", function (e) { if (e.target === dlg || e.target.hasAttribute("data-close")) dlg.close(); });
    }
    $all("select[data-autosubmit]", root).forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
    $all("form[data-confirm]", root).forEach(function (f) {
      f.addEventListener("submit", function (e) { if (!window.confirm(f.getAttribute("data-confirm"))) e.preventDefault(); });
    });
    var m = /^#task-(\d+)$/.exec(location.hash);
    if (m) openLog(m[1], false);
    // A running task's log keeps tailing even between events (a quiet renderer).
    if ($("#log-pane") && !window.__vstLogPoll) {
      window.__vstLogPoll = setInterval(function () {
        var pane = $("#log-pane");
        if (pane && !pane.hidden && pane.getAttribute("data-task")) {
          var st = $("[data-log-status]", pane);
          if (st && st.textContent === "running") tailLog();
        }
      }, 2000);
    }
  }

  function pollLists() {
    // Heartbeats and lost workers do not always make events: the workers list and the
    // farm's counters also refresh themselves now and then.
    $all("[data-poll][id]").forEach(function (el) {
      setInterval(function () { if (!document.hidden) refreshFragment("#" + el.id); },
                  parseInt(el.getAttribute("data-poll"), 10) || 10000);
    });
  }

  // A button that asks first (delete, cancel, disable): the question is asked before
  // htmx or the browser sends anything, whichever button of the form was pressed.
  document.addEventListener("submit", function (e) {
    var b = e.submitter;
    if (!b || !b.hasAttribute("data-confirm")) return;
    var text = b.getAttribute("data-confirm");
    var of = b.getAttribute("data-confirm-count");
    if (of) {  // "the {n} selected jobs": count the boxes that belong to this form
      var n = $all('input[type=checkbox][form="' + of + '"]:checked').length;
      if (!n) { e.preventDefault(); e.stopImmediatePropagation(); window.alert("Select jobs first."); return; }
      text = text.replace("{n}", String(n));
    }
    if (!window.confirm(text)) {
      e.preventDefault();
      e.stopImmediatePropagation();
    }
  }, true);

  // Keyboard users keep their place: after a row or the job head is swapped for its new
  // state, focus returns to the same control of it (a button, the priority field), its
  // "More" menu opened when the control is in there. A button that is disabled now hands
  // the focus to its counterpart (Pause <-> Resume), else to the nearest control of the
  // row that still acts (after Cancel: Retry or "More"). A deleted row hands it to the
  // row below (or above) it.
  var COUNTERPART = { pause: "resume", resume: "pause" };
  var refocus = null;
  function actionControls(holder) {
    return $all(".actions button, .actions summary, .actions input[type=number]", holder);
  }
  function usable(c) {
    if (!c || c.disabled) return false;
    var d = c.closest("details");
    return !d || d.open || c.tagName === "SUMMARY";
  }
  function focusAgain(holder, want) {
    var c = want.id ? document.getElementById(want.id) : null;
    if (c && !holder.contains(c)) c = null;
    if (!c && want.action) c = $('[data-action="' + want.action + '"]', holder);
    if (c && c.disabled && COUNTERPART[want.action]) c = $('[data-action="' + COUNTERPART[want.action] + '"]', holder);
    if (c && !c.disabled) openMenuOf(c);
    if (!usable(c)) {
      var list = actionControls(holder), at = Math.min(want.at, list.length - 1), i;
      c = null;
      for (i = at + 1; i < list.length && !c; i++) if (usable(list[i])) c = list[i];
      for (i = at - 1; i >= 0 && !c; i--) if (usable(list[i])) c = list[i];
    }
    (c || $("a", holder) || holder).focus();
  }
  document.addEventListener("htmx:beforeRequest", function (e) {
    var el = document.activeElement;
    var holder = el && el.closest ? el.closest("[data-job]") : null;
    refocus = null;
    var from = e.detail && e.detail.elt;  // the form that posts
    if (!holder || !el.closest(".actions") || (from && !holder.contains(from))) return;
    var next = holder.tagName === "TR" ? holder.nextElementSibling || holder.previousElementSibling : null;
    refocus = {
      job: holder.getAttribute("data-job"), id: el.id || "", action: el.getAttribute("data-action") || "",
      at: actionControls(holder).indexOf(el), next: next && next.getAttribute("data-job")
    };
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocus) return;
    var want = refocus;
    refocus = null;
    var holder = $('[data-job="' + want.job + '"]');
    if (holder) focusAgain(holder, want);
  });
  // An empty answer (a deleted row) swaps in nothing, so nothing settles: the row below
  // takes the focus, on its "More" (where Delete was).
  document.addEventListener("htmx:beforeSwap", function (e) {
    var want = refocus;
    if (!want || !want.next || (e.detail.serverResponse || "").trim() !== "" || e.detail.target.tagName !== "TR") return;
    refocus = null;
    setTimeout(function () {
      if ($('[data-job="' + want.job + '"]')) return;
      var row = $('tr[data-job="' + want.next + '"]');
      var c = row && ($(".actions summary", row) || $("a", row));
      if (c) c.focus();
    }, 0);
  });

  // The request never reached the manager: say that the action was not done.
  document.addEventListener("htmx:sendError", function () {
    var flash = $("#flash");
    managerGone();
    if (flash) { flash.textContent = "The manager did not answer: the action was not done."; flash.hidden = false; }
  });

  // htmx does not swap error answers: show their message instead of doing nothing.
  document.addEventListener("htmx:responseError", function (e) {
    var flash = $("#flash");
    if (!flash) return;
    var text = e.detail.xhr.responseText || "";
    var m = /<p class="error"[^>]*>([\s\S]*?)<\/p>/.exec(text);
    // DOMParser makes an inert document: nothing in it loads or runs.
    flash.textContent = m ? new DOMParser().parseFromString(m[1], "text/html").body.textContent
                          : "The action failed (" + e.detail.xhr.status + ").";
    flash.hidden = false;
  });

  // On a phone the list comes first: the search folds away unless it is in use.
  function foldSearch() {
    var d = $("details.search");
    if (d && window.innerWidth <= 720 && !d.hasAttribute("data-keep-open")) d.open = false;
  }

  document.addEventListener("DOMContentLoaded", function () { foldSearch(); bind(document); connect(); pollLists(); });
  // Actions posted by htmx swap in fresh fragments: bind their handlers too.
  document.addEventListener("htmx:load", function (e) { if (e.target !== document.body) bind(e.target); });
  window.vstudio = { onEvent: onEvent, openLog: openLog, csrf: csrf };
})();
