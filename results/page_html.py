"""The retrieval page's one HTML document (results/page.py serves it): a form, and a few lines of script that ask
/api/search and show each hit as a card with its animated GIF.  No external file, font or script: works offline.
``__CONFIG__`` is replaced by the page's JSON (sources, models, k)."""

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>motion retrieval</title>
<style>
 body { font: 14px/1.4 system-ui, sans-serif; margin: 1.2em; color: #222; }
 form { display: flex; flex-wrap: wrap; gap: .6em; align-items: end; margin-bottom: .8em; }
 label { display: flex; flex-direction: column; font-size: 12px; color: #555; }
 input[type=text] { width: 34em; padding: .35em; font-size: 15px; }
 select, input[type=number] { padding: .3em; }
 #status { color: #555; margin: .4em 0 .8em; }
 #status.error { color: #b00020; font-weight: bold; }
 #hits { display: flex; flex-wrap: wrap; gap: 12px; }
 .hit { width: 220px; margin: 0; border: 1px solid #ccc; border-radius: 6px; padding: 6px; background: #fafafa; }
 .hit.correct { border: 3px solid #2e7d32; } .hit.equivalent { border: 3px solid #f9a825; }
 .hit img { width: 200px; height: 200px; display: block; margin: 0 auto; background: #fff; }
 .head { display: flex; justify-content: space-between; font-weight: bold; }
 .verdict { font-size: 12px; } .verdict.correct { color: #2e7d32; } .verdict.wrong { color: #999; }
 .captions { font-size: 12px; margin: .3em 0 0; padding-left: 1.1em; }
 .id { font-family: monospace; font-size: 12px; color: #555; }
</style></head>
<body>
<h2>What does it retrieve for my sentence?</h2>
<form id="form">
 <label>query <input type="text" id="q" name="q" placeholder="two people shake hands" autofocus></label>
 <label>motions <select id="source" name="source"></select></label>
 <label>model <select id="model" name="model"></select></label>
 <label>top k <input type="number" id="k" name="k" min="1" max="100"></label>
 <label>or a labelled caption of these motions <select id="caption"><option value="">(free text)</option></select></label>
 <input type="hidden" id="truth" name="truth">
 <button type="submit">search</button>
</form>
<p id="status"></p>
<div id="hits"></div>
<script>
const CONFIG = __CONFIG__;
const $ = (id) => document.getElementById(id);
function option(value, text) { const o = document.createElement("option"); o.value = value; o.textContent = text; return o; }
for (const s of CONFIG.sources) $("source").appendChild(option(s.key, s.title));
for (const m of CONFIG.models) $("model").appendChild(option(m.name, m.label));
$("k").value = CONFIG.k;

async function loadCaptions() {
  const box = $("caption");
  box.length = 1;
  const r = await fetch("/api/captions?source=" + encodeURIComponent($("source").value));
  if (!r.ok) return;
  for (const c of (await r.json()).captions) box.appendChild(option(c.id + "\\t" + c.text, c.text + "  [" + c.id + "]"));
}
$("caption").addEventListener("change", () => {
  const [id, text] = $("caption").value.split("\\t");
  $("truth").value = id || ""; if (text) { $("q").value = text; search(); }
});
$("q").addEventListener("input", () => { $("truth").value = ""; $("caption").value = ""; });
$("source").addEventListener("change", () => { $("truth").value = ""; loadCaptions(); });

function card(h, data) {
  const fig = document.createElement("figure");
  fig.className = "hit" + (h.correct ? " correct" : h.equivalent ? " equivalent" : "");
  fig.dataset.rank = h.rank; fig.dataset.motion = h.id;
  const head = document.createElement("div"); head.className = "head";
  const score = Object.assign(document.createElement("span"), {textContent: h.score.toFixed(4), className: "score"});
  head.append("#" + h.rank, score);
  const img = document.createElement("img");
  img.className = "motion"; img.alt = "motion " + h.id; img.src = h.gif;
  img.onload = () => { img.dataset.loaded = "1"; };
  img.onerror = () => { img.dataset.loaded = "error"; img.alt = "no animation for " + h.id; };
  const id = Object.assign(document.createElement("div"), {className: "id", textContent: h.id});
  fig.append(head, img, id);
  if (data.truth) {
    const v = document.createElement("div");
    v.className = "verdict " + (h.correct ? "correct" : h.equivalent ? "equivalent" : "wrong");
    v.textContent = h.correct ? "correct match"
      : h.equivalent ? "same label / caption as the query's motion" : "not the query's motion";
    fig.append(v);
  }
  const ul = document.createElement("ul"); ul.className = "captions";
  for (const c of h.captions) ul.appendChild(Object.assign(document.createElement("li"), {textContent: c}));
  fig.append(ul);
  return fig;
}

async function search(ev) {
  if (ev) ev.preventDefault();
  const params = new URLSearchParams({q: $("q").value, source: $("source").value, model: $("model").value,
                                      k: $("k").value, truth: $("truth").value});
  $("status").className = ""; $("status").textContent = "searching ...";
  const r = await fetch("/api/search?" + params);
  const data = await r.json();
  $("hits").replaceChildren();
  if (!r.ok) { $("status").className = "error"; $("status").textContent = data.error; return; }
  $("status").textContent = data.hits.length + " motions of " + data.source_title + " by " + data.model + ": "
    + (data.exact ? "exact" : "reranked from each model's top " + data.candidates + " (" + data.pooled + " motions)")
    + "; search " + data.search_ms.toFixed(1) + " ms, text " + data.encode_ms.toFixed(1) + " ms, server "
    + data.total_ms.toFixed(1) + " ms";
  for (const h of data.hits) $("hits").appendChild(card(h, data));
}
$("form").addEventListener("submit", search);

const given = new URLSearchParams(location.search);
for (const key of ["q", "source", "model", "k", "truth"]) if (given.get(key)) $(key).value = given.get(key);
loadCaptions().then(() => {
  const picked = given.get("truth") + "\\t" + given.get("q");
  if ([...$("caption").options].some((o) => o.value === picked)) $("caption").value = picked;
  if (given.get("q")) search();
});
</script>
</body></html>
"""
