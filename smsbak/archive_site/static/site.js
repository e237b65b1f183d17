// smsbak archive search. Runs from file:// with no network: the index is a set of
// small scripts (search/...) that this file loads on demand with <script src>, as
// file:// pages may not fetch(). Text is put in with textContent only, never as HTML.
"use strict";
(function () {
  var registry = { words: {}, texts: {}, conversations: null };
  var waiting = {};
  window.smsbakSearch = {
    words: function (key, table) { registry.words[key] = table; },
    tokens: function (text) { return words(text).map(function (w) { return [w, shardKey(w)]; }); },
    texts: function (key, rows) { registry.texts[key] = rows; },
    conversations: function (_key, rows) { registry.conversations = rows; }
  };

  function load(src) {
    if (!waiting[src]) {
      waiting[src] = new Promise(function (resolve) {
        var script = document.createElement("script");
        script.src = src;
        script.onload = function () { resolve(true); };
        script.onerror = function () { resolve(false); };
        document.head.appendChild(script);
      });
    }
    return waiting[src];
  }

  // Must match smsbak/archive_site/search.py: NFKC, lower case, \w runs, 40 chars max.
  function words(text) {
    var found = text.normalize("NFKC").toLowerCase().match(/[\p{L}\p{N}_]+/gu) || [];
    return found.map(function (w) { return Array.from(w).slice(0, 40).join(""); });
  }
  function shardKey(word) {
    var bytes = new TextEncoder().encode(Array.from(word).slice(0, 2).join(""));
    return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join("");
  }

  function refsFor(word) {
    var key = shardKey(word);
    return load("search/w/" + key + ".js").then(function () {
      var table = registry.words[key] || {};
      var refs = new Set();
      Object.keys(table).forEach(function (w) {
        if (w.startsWith(word)) { table[w].forEach(function (r) { refs.add(r); }); }
      });
      return refs;
    });
  }

  function pageOf(starts, index) {
    var page = 1;
    for (var i = 0; i < starts.length; i++) { if (starts[i] <= index) { page = i + 1; } }
    return page;
  }

  var LIMIT = 50;
  var generation = 0;

  function run(query, status, list) {
    var mine = ++generation;
    var terms = words(query).filter(function (w) { return Array.from(w).length >= 2; });
    list.textContent = "";
    if (!query.trim()) { status.textContent = ""; return; }
    if (!terms.length) { status.textContent = "Type at least two letters of a word."; return; }
    status.textContent = "Searching…";
    load("search/convs.js").then(function () {
      return Promise.all(terms.map(refsFor));
    }).then(function (sets) {
      if (mine !== generation) { return; }
      var hits = Array.from(sets[0]).filter(function (r) {
        return sets.every(function (s) { return s.has(r); });
      }).map(function (r) {
        var parts = r.split(".");
        var conv = registry.conversations[+parts[0]];
        return { conv: conv, index: +parts[1] };
      }).filter(function (h) { return h.conv; });
      hits.sort(function (a, b) { return (b.conv[2] - a.conv[2]) || (b.index - a.index); });
      var shown = hits.slice(0, LIMIT);
      var chunks = {};
      shown.forEach(function (h) {
        h.page = pageOf(h.conv[3], h.index);
        chunks[h.conv[0] + "-" + h.page] = true;
      });
      return Promise.all(Object.keys(chunks).map(function (k) {
        return load("search/t/" + k + ".js");
      })).then(function () {
        if (mine !== generation) { return; }
        status.textContent = hits.length === 0 ? "No message found." :
          hits.length + " message" + (hits.length === 1 ? "" : "s") + " found" +
          (hits.length > LIMIT ? " (the newest " + LIMIT + " shown)" : "") + ".";
        shown.forEach(function (h) { list.appendChild(item(h)); });
      });
    });
  }

  function item(hit) {
    var rows = registry.texts[hit.conv[0] + "-" + hit.page] || [];
    var row = rows.find(function (r) { return r[0] === hit.index; }) || [hit.index, "", 0, "", ""];
    var li = document.createElement("li");
    var a = document.createElement("a");
    a.href = "c/" + hit.conv[0] + "/p" + hit.page + ".html#m" + hit.index;
    var name = document.createElement("span");
    name.className = "name";
    name.textContent = hit.conv[1] + (row[2] ? " · you" : (row[3] ? " · " + row[3] : ""));
    var when = document.createElement("time");
    when.textContent = " " + row[1];
    var text = document.createElement("span");
    text.className = "text";
    text.textContent = row[4];
    a.appendChild(name); a.appendChild(when); a.appendChild(text);
    li.appendChild(a);
    return li;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("q");
    if (!box) { return; }
    var status = document.getElementById("status");
    var list = document.getElementById("results");
    var timer = null;
    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { run(box.value, status, list); }, 150);
    });
    if (box.value) { run(box.value, status, list); }
  });
})();
