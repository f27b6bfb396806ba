// Segment builder: edits an AND/OR/NOT rule tree, keeps the hidden JSON field current and shows a
// live count from POST /api/v1/segments/preview (sent with the session's X-CSRF-Token).
(function () {
  "use strict";

  var root = document.getElementById("segment-builder");
  var field = document.getElementById("rules-field");
  var configNode = document.getElementById("segment-builder-config");
  if (!root || !field || !configNode) { return; }
  var config = JSON.parse(configNode.textContent);
  var T = config.text;
  var readonly = root.dataset.readonly === "1";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var lang = document.documentElement.lang || "en";
  var countEl = document.getElementById("live-count");
  var orgsEl = document.getElementById("live-organisations");
  var statusEl = document.getElementById("live-status");
  var sampleEl = document.getElementById("live-sample");
  var numberFormat = new Intl.NumberFormat(lang);

  // ---- model: a group is {mode: "and"|"or"|"not", children: [...]}; a leaf is {type, ...} ----------

  function fromRule(rule) {
    if (!rule || typeof rule !== "object") { return group("and", []); }
    if (rule.type === "and" || rule.type === "or") {
      return group(rule.type, (rule.rules || []).map(fromRule));
    }
    if (rule.type === "not") {
      var inner = rule.rule || {};
      if (inner.type === "or") { return group("not", (inner.rules || []).map(fromRule)); }
      return group("not", [fromRule(inner)]);
    }
    return leaf(rule);
  }

  function group(mode, children) { return {group: true, mode: mode, children: children}; }

  function leaf(rule) {
    var node = {group: false, type: rule.type || "field"};
    node.field = rule.field || "country";
    node.name = rule.name || "";
    node.op = rule.op || defaultOp(node);
    node.value = rule.value === undefined ? null : rule.value;
    node.purpose = rule.purpose || "marketing";
    node.channel = rule.channel || "email";
    return node;
  }

  function kindOf(node) {
    if (node.type === "tag") { return "tag"; }
    if (node.type === "trait") { return "trait"; }
    if (node.type === "field") { return (config.fields[node.field] || {kind: "string"}).kind; }
    return null;
  }

  function defaultOp(node) {
    var kind = kindOf(node);
    return kind ? config.opsByKind[kind][0] : null;
  }

  function isList(op) { return op === "in" || op === "not_in" || op === "has_any" || op === "has_all"; }
  function noValue(op) { return op === "exists" || op === "not_exists"; }
  function isDays(op) { return op === "within_last_days" || op === "older_than_days"; }

  function scalar(kind, text) {
    text = String(text).trim();
    if (text === "") { return null; }
    if (kind === "integer") { return /^-?\d+$/.test(text) ? parseInt(text, 10) : null; }
    if (kind === "trait") { return /^-?\d+(\.\d+)?$/.test(text) ? Number(text) : text; }
    return text;
  }

  // The rule JSON of a node; strict=true returns null for incomplete conditions (left out of the count).
  function toRule(node, strict) {
    if (node.group) {
      var rules = [];
      node.children.forEach(function (child) {
        var r = toRule(child, strict);
        if (r !== null) { rules.push(r); }
      });
      if (node.mode === "not") { return {type: "not", rule: {type: "or", rules: rules}}; }
      return {type: node.mode, rules: rules};
    }
    if (node.type === "consent") { return {type: "consent", purpose: node.purpose, channel: node.channel}; }
    var out = {type: node.type, op: node.op};
    if (node.type === "field") { out.field = node.field; }
    if (node.type === "trait") {
      out.name = node.name.trim();
      if (strict && !out.name) { return null; }
    }
    var value = leafValue(node);
    if (strict && value === undefined) { return null; }
    if (!noValue(node.op)) { out.value = value === undefined ? null : value; }
    return out;
  }

  // The leaf's value for its operator, or undefined when incomplete.
  function leafValue(node) {
    var kind = kindOf(node);
    var v = node.value;
    if (noValue(node.op)) { return null; }
    if (kind === "boolean") { return v === true || v === false ? v : undefined; }
    if (isDays(node.op)) {
      var days = scalar("integer", v === null ? "" : v);
      return days === null || days < 0 ? undefined : days;
    }
    if (isList(node.op)) {
      var items = (Array.isArray(v) ? v : String(v === null ? "" : v).split(","))
        .map(function (s) { return scalar(kind, s); })
        .filter(function (s) { return s !== null; });
      return items.length ? items : undefined;
    }
    if (node.op === "has") { var tag = scalar("string", v === null ? "" : v); return tag === null ? undefined : tag; }
    if (node.op === "between") {
      var pair = Array.isArray(v) ? v : [null, null];
      var low = scalar(kind, pair[0] === null ? "" : pair[0]);
      var high = scalar(kind, pair[1] === null ? "" : pair[1]);
      return low === null || high === null ? undefined : [low, high];
    }
    var one = scalar(kind, v === null ? "" : v);
    return one === null ? undefined : one;
  }

  // ---- rendering --------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") { node.textContent = attrs[key]; } else { node.setAttribute(key, attrs[key]); }
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    if (readonly && (tag === "input" || tag === "select" || tag === "button")) { node.disabled = true; }
    return node;
  }

  function select(options, value, onChange, label) {
    var s = el("select", {"aria-label": label || ""});
    Object.keys(options).forEach(function (key) {
      var o = el("option", {value: key, text: options[key]});
      if (key === value) { o.selected = true; }
      s.appendChild(o);
    });
    s.addEventListener("change", function () { onChange(s.value); });
    return s;
  }

  function input(value, onInput, attrs) {
    var i = el("input", Object.assign({type: "text"}, attrs || {}));
    i.value = value === null || value === undefined ? "" : (Array.isArray(value) ? value.join(", ") : value);
    i.addEventListener("input", function () { onInput(i.value); });
    return i;
  }

  function pick(keys, labels) {
    var out = {};
    keys.forEach(function (k) { out[k] = labels[k] || k; });
    return out;
  }

  function renderValue(node, box) {
    var kind = kindOf(node);
    if (noValue(node.op)) { return; }
    var type = kind === "date" || kind === "datetime" ? "date" : "text";
    if (kind === "boolean") {
      var cur = node.value === true ? "true" : node.value === false ? "false" : "";
      box.appendChild(select({"": "…", "true": T.yes, "false": T.no}, cur, function (v) {
        node.value = v === "" ? null : v === "true"; changed(false);
      }, T.value));
      return;
    }
    if (isDays(node.op)) {
      box.appendChild(input(node.value, function (v) { node.value = v; changed(false); },
        {type: "number", min: "0", "aria-label": T.days, class: "rule-value"}));
      box.appendChild(el("span", {text: T.days}));
      return;
    }
    if (node.op === "between") {
      if (!Array.isArray(node.value)) { node.value = [null, null]; }
      box.appendChild(input(node.value[0], function (v) { node.value[0] = v; changed(false); },
        {type: type, "aria-label": T.value, class: "rule-value"}));
      box.appendChild(el("span", {text: T.and}));
      box.appendChild(input(node.value[1], function (v) { node.value[1] = v; changed(false); },
        {type: type, "aria-label": T.value, class: "rule-value"}));
      return;
    }
    if (isList(node.op)) {
      box.appendChild(input(node.value, function (v) { node.value = v; changed(false); },
        {placeholder: T.values_hint, "aria-label": T.value, class: "rule-value"}));
      return;
    }
    if (Array.isArray(node.value)) { node.value = node.value[0] === undefined ? null : node.value[0]; }
    box.appendChild(input(node.value, function (v) { node.value = v; changed(false); },
      {type: type, "aria-label": T.value, class: "rule-value"}));
  }

  function renderLeaf(node, parent, index) {
    var row = el("div", {class: "rule-condition", "data-rule-type": node.type});
    row.appendChild(select({field: T.field, tag: T.tag, trait: T.trait, consent: T.consent}, node.type,
      function (v) { node.type = v; node.op = defaultOp(node); node.value = null; changed(true); }, T.field));
    if (node.type === "field") {
      var labels = {};
      Object.keys(config.fields).forEach(function (k) { labels[k] = config.fields[k].label; });
      row.appendChild(select(labels, node.field, function (v) {
        node.field = v;
        if (config.opsByKind[kindOf(node)].indexOf(node.op) < 0) { node.op = defaultOp(node); }
        node.value = null; changed(true);
      }, T.field));
    }
    if (node.type === "trait") {
      row.appendChild(input(node.name, function (v) { node.name = v; changed(false); },
        {placeholder: T.trait_name, "aria-label": T.trait_name, class: "rule-trait"}));
    }
    if (node.type === "consent") {
      row.appendChild(el("span", {text: T.consent_granted}));
      row.appendChild(select(config.purposes, node.purpose, function (v) { node.purpose = v; changed(false); }, T.purpose));
      row.appendChild(select(config.channels, node.channel, function (v) { node.channel = v; changed(false); }, T.channel));
    } else {
      var ops = pick(config.opsByKind[kindOf(node)], config.operators);
      row.appendChild(select(ops, node.op, function (v) {
        var wasList = isList(node.op);
        node.op = v;
        if (isList(v) !== wasList || v === "between" || noValue(v) || isDays(v)) { node.value = null; }
        changed(true);
      }, T.value));
      renderValue(node, row);
    }
    var remove = el("button", {type: "button", class: "link remove-rule", text: T.remove});
    remove.addEventListener("click", function () { parent.children.splice(index, 1); changed(true); });
    row.appendChild(remove);
    return row;
  }

  function renderGroup(node, parent, index) {
    var box = el("div", {class: "rule-group" + (node.mode === "not" ? " not" : ""), "data-mode": node.mode});
    var head = el("div", {class: "rule-group-head"});
    head.appendChild(select({and: T.all, or: T.any, not: T.none}, node.mode,
      function (v) { node.mode = v; changed(true); }, T.all));
    var addCond = el("button", {type: "button", class: "add-condition", text: T.add_condition});
    addCond.addEventListener("click", function () { node.children.push(leaf({type: "field"})); changed(true); });
    var addGroup = el("button", {type: "button", class: "add-group", text: T.add_group});
    addGroup.addEventListener("click", function () { node.children.push(group("and", [])); changed(true); });
    head.appendChild(addCond);
    head.appendChild(addGroup);
    if (parent) {
      var remove = el("button", {type: "button", class: "link remove-rule", text: T.remove});
      remove.addEventListener("click", function () { parent.children.splice(index, 1); changed(true); });
      head.appendChild(remove);
    }
    box.appendChild(head);
    node.children.forEach(function (child, i) {
      box.appendChild(child.group ? renderGroup(child, node, i) : renderLeaf(child, node, i));
    });
    return box;
  }

  // ---- state, sync and the live count -----------------------------------------------------------

  var state;
  try { state = fromRule(JSON.parse(field.value || "{}")); } catch (e) { state = group("and", []); }
  if (!state.group) { state = group("and", [state]); }

  function render() {
    root.textContent = "";
    root.appendChild(renderGroup(state, null, 0));
  }

  var timer = null;
  var inflight = null;

  function changed(rerender) {
    if (rerender) { render(); }
    field.value = JSON.stringify(toRule(state, false));
    schedulePreview();
  }

  function schedulePreview() {
    if (timer) { clearTimeout(timer); }
    countEl.classList.add("stale");
    timer = setTimeout(preview, 250);
  }

  function displayName(c) {
    var family = c.family_name || "", given = c.given_name || "";
    var parts = c.language === "vi" || c.language === "hu" ? [family, given] : [given, family];
    return parts.filter(Boolean).join(" ");
  }

  function preview() {
    var strict = toRule(state, true);
    var loose = JSON.stringify(toRule(state, false));
    statusEl.textContent = JSON.stringify(strict) === loose ? "" : T.incomplete;
    if (inflight) { inflight.abort(); }
    inflight = new AbortController();
    fetch(config.previewUrl, {
      method: "POST",
      credentials: "same-origin",
      signal: inflight.signal,
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf, "Accept": "application/json"},
      body: JSON.stringify({rules: strict, sample_size: 10})
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.json();
    }).then(function (data) {
      countEl.textContent = numberFormat.format(data.count);
      countEl.dataset.count = String(data.count);
      orgsEl.textContent = numberFormat.format(data.organisations);
      countEl.classList.remove("stale");
      sampleEl.textContent = "";
      data.sample.forEach(function (c) {
        var a = el("a", {href: "/customers/" + c.id, text: displayName(c)});
        sampleEl.appendChild(el("li", {}, [a]));
      });
    }).catch(function (error) {
      if (error && error.name === "AbortError") { return; }
      statusEl.textContent = T.error;
    });
  }

  field.addEventListener("change", function () {
    try { state = fromRule(JSON.parse(field.value)); } catch (e) { return; }
    if (!state.group) { state = group("and", [state]); }
    render();
    schedulePreview();
  });

  render();
  countEl.dataset.count = countEl.textContent.replace(/\D/g, "");
})();
