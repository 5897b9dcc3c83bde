"""HTML: one self-contained audit page (inline CSS, vanilla JS, inline SVG), opens offline.

Nothing is fetched: no URL appears in the page and a Content-Security-Policy forbids every
load. The driver table is built by the page's script from a JSON data island
(`<script type="application/json" id="data">`, with `<`, `>` and `&` written as \\u escapes so
no `</script>` can close it early); its headers sort, a text box and a group select filter it.
Everything else is static HTML written here: summaries, the coverage curves and the accessor
mix as SVG (report/svg.py), and the site lists in collapsed `<details>` per driver.

Size: the page never lists every site. It holds every driver, at most MAX_UNSUPPORTED sites
that would oops and the TOP_HOT costliest hot #VE sites, and says how many it left out and
that `--format json` / `--format csv` have them all; a 250,000-site result stays well under
10 MB (tests/unit/test_report_html.py).

Script hooks for tests: errors (window.onerror, unhandled rejections) are written into
`#js-errors`; after the table is built `<body data-rendered="yes">`; with `?selftest` in the
URL the script sorts and filters through the real controls and writes the outcome as JSON into
`#selftest`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from html import escape
from pathlib import PurePath

from mmioscan import __version__
from mmioscan.core.findings import (
    FINDING_CLASSES,
    RAW_DEREF,
    UNSUPPORTED,
    DriverRow,
    Finding,
    GroupCounts,
    clean,
    coverage_curves,
    driver_rows,
    escaped,
    findings,
    group_counts,
    hot_order,
    hot_text,
    tdx_text,
)
from mmioscan.core.model import ScanResult, Site, StrategyRow
from mmioscan.report.aggregate import TRAPS, active_sites, count_by, platform_answer
from mmioscan.report.svg import bar_chart, coverage_chart

MAX_UNSUPPORTED = 5000
TOP_HOT = 2000
TOP_ACCESSORS = 15
MAX_PROBLEMS = 100
MAX_FOLDERS = 5  # per driver in the data island
_NUMBER = re.compile(r"^[0-9][0-9,.]*[+%]?$")
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
# The data island's driver rows are arrays in this order (smaller than objects).
DRIVER_FIELDS = ("name", "group", "config", "sites", "ve", "paravirt", "unsupported", "hot",
                 "ve_exits", "points_90", "reachable", "folders", "group_reason")


def e(value: object) -> str:
    """Escaped text; None is a dash."""
    return "-" if value is None else escape(clean(str(value)))


def _num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def json_island(data: object) -> str:
    """JSON that is safe inside <script>: no '<' (so no '</script>' or '<!--'), no '>' or
    '&'. The \\u escapes are plain JSON, so JSON.parse gives back the same strings."""
    text = json.dumps(escaped(data), sort_keys=True, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _td(cell: str) -> str:
    return f'<td class="n">{cell}</td>' if _NUMBER.match(cell) else f"<td>{cell}</td>"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A static table; cells are HTML already escaped by the caller. Numbers align right."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# --- sections ------------------------------------------------------------------------------

def _header(result: ScanResult, sites: list[Site]) -> str:
    version = result.kernel_version or "unknown version"
    meta = [("kernel version", e(result.kernel_version)),
            # Base names only: a published report must not depend on where the tree was.
            ("config", e(PurePath(result.config).name) if result.config
             else "none (every file counted)"),
            ("strategy", e(result.strategy)), ("tool", f"mmioscan {e(__version__)}"),
            ("tree", f"<code>{e(PurePath(result.root).name)}</code>"),
            ("scanned", ", ".join(f"<code>{e(p)}</code>" for p in result.scanned) or "-"),
            ("sites", f"{len(sites):,} active counted, "
                      f"{sum(not s.active for s in result.sites):,} more in <code>#if 0</code>, "
                      f"{sum(s.active and s.reachable is False for s in result.sites):,} "
                      "active in files the config does not build")]
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta)
    return (f"<header><h1>MMIO audit: Linux {e(version)}</h1><dl class=\"meta\">{items}</dl>"
            "</header>")


def _nav() -> str:
    links = [("summary", "Summary"), ("drivers", "Drivers"), ("coverage", "Patch points"),
             ("mix", "Accessor mix"), ("unsupported", "Would oops"), ("hot", "Hot #VE"),
             ("problems", "Problems")]
    return "<nav>" + " · ".join(f'<a href="#{i}">{t}</a>' for i, t in links) + "</nav>"


def _summary(result: ScanResult, sites: list[Site], found: list[Finding]) -> str:
    by_class = {c.id: 0 for c in FINDING_CLASSES}
    for f in found:
        by_class[f.cls.id] += 1
    classes = _table(("finding", "level", "sites", "meaning"),
                     ([f"<code>{c.id}</code>", c.level, _num(by_class[c.id]), e(c.short)]
                      for c in FINDING_CLASSES))
    groups = _table(("group", "drivers", "sites", "#VE", "paravirt", "unsupported",
                     "not assessed", "hot", "hot #VE", "#VE exits"),
                    (_group_row(g) for g in group_counts(sites)), "num")
    sentence, hottest = platform_answer(result)
    first = result.platforms[0] if result.platforms else "tdx"
    hot = "".join(
        f"<li><code>{e(s.path)}:{s.line}</code> <code>{e(s.callee)}</code> in {e(s.driver)}"
        f" ({next((v.ve_exits for n, v in s.verdicts() if n == first), None) or '?'} "
        f"{TRAPS.get(first, '#VE')} per execution, {e(hot_text(s))})</li>" for s in hottest)
    answer = (f'<p class="answer">{e(sentence)}</p>'
              + (f"<p>The hottest trapping sites:</p><ul>{hot}</ul>" if hot else ""))
    parts = ['<section id="summary"><h2>Summary</h2>', answer, "<h3>Findings</h3>", classes,
             "<h3>Per driver group</h3>", groups]
    if result.strategies:
        parts += ["<h3>Strategies side by side</h3>", _strategies(result.strategies)]
    return "".join(parts) + "</section>"


def _group_row(g: GroupCounts) -> list[str]:
    return [e(g.group), _num(g.drivers), _num(g.sites), _num(g.path("ve")),
            _num(g.path("paravirt")), _num(g.path("unsupported")),
            _num(g.path("not assessed")), _num(g.hot), _num(g.hot_ve), _num(g.ve_exits)]


def _strategies(rows: Sequence[StrategyRow]) -> str:
    table = _table(("platform", "strategy", "group", "drivers", "sites", "#VE/#VC", "paravirt",
                    "unsupported", "hot", "hot #VE/#VC", "exits", "90% points"),
                   ([e(r.platform), e(r.strategy), e(r.group), _num(r.drivers), _num(r.sites),
                     _num(r.ve),
                     _num(r.paravirt), _num(r.unsupported), _num(r.hot), _num(r.hot_ve),
                     _num(r.ve_exits) + ("+" if r.ve_exits_unknown else ""),
                     _num(r.points_90)] for r in rows), "num")
    return table + ('<p class="muted">#VE exits: per execution of each site once (+: some '
                    "counts unknown). 90% points: patch points still needed to cover 90% of "
                    "the sites that are not paravirt.</p>")


def _folders(folders: Sequence[str]) -> str:
    """The first MAX_FOLDERS folders (a driver built from files all over the tree would
    otherwise dominate the page's size)."""
    shown = " ".join(clean(f) for f in folders[:MAX_FOLDERS])
    more = len(folders) - MAX_FOLDERS
    return f"{shown} (+{more:,} more)" if more > 0 else shown


def _driver_data(rows: Sequence[DriverRow]) -> list[list[object]]:
    return [[clean(r.name), r.group, r.config_symbol, r.sites, r.ve, r.paravirt,
             r.unsupported, r.hot, r.ve_exits, r.points_90, r.reachable, _folders(r.folders),
             clean(r.group_reason)] for r in rows]


def _drivers(rows: Sequence[DriverRow]) -> str:
    header = [("name", "driver", ""), ("group", "group", ""), ("config", "config", ""),
              ("sites", "sites", "num"), ("ve", "#VE", "num"),
              ("paravirt", "paravirt", "num"), ("unsupported", "unsupported", "num"),
              ("hot", "hot", "num"), ("ve_exits", "#VE exits", "num"),
              ("points_90", "90% points", "num")]
    ths = "".join(f'<th data-key="{k}" class="{c}" tabindex="0" aria-sort="none">{t}</th>'
                  for k, t, c in header)
    groups = sorted({r.group or "unknown" for r in rows})
    options = "".join(f'<option value="{e(g)}">{e(g)}</option>' for g in groups)
    return (
        '<section id="drivers"><h2>Drivers</h2>'
        '<div class="controls"><label>filter <input id="driver-filter" type="search" '
        'placeholder="driver, CONFIG symbol or folder"></label> '
        '<label>group <select id="driver-group"><option value="">all</option>'
        f"{options}</select></label> <span id=\"driver-count\"></span></div>"
        f'<table id="driver-table" class="num sortable"><thead><tr>{ths}</tr></thead>'
        "<tbody></tbody></table>"
        "<noscript><p>The driver table needs JavaScript; every driver is also in "
        "<code>--format json</code>.</p></noscript></section>")


def _coverage(result: ScanResult, sites: list[Site]) -> str:
    curves = coverage_curves(result, sites)
    note = ""
    if not any(n.startswith("group:") for n, _ in result.patch_points) and len(curves) > 1:
        note = ('<p class="muted">Group curves are merged from the drivers\' own patch '
                "points: an upper bound on the points a group needs.</p>")
    rows = ([e(name), _num(cov.sites)] + [_num(dict(cov.needed).get(p)) for p in (50, 90, 100)]
            for name, cov in curves)
    top = ""
    if curves:
        points = curves[0][1].points[:20]
        top = "<h3>Top 20 points over all sites</h3>" + _table(
            ("#", "point", "defined at", "sites covered", "cumulative"),
            ([str(i), f"<code>{e(p.name)}</code>", f"<code>{e(p.path)}:{p.line}</code>",
              _num(p.covered), f"{p.cumulative_share:.1%}"]
             for i, p in enumerate(points, start=1)), "num")
    body = (coverage_chart(curves) + note
            + _table(("scope", "sites", "50%", "90%", "100%"), rows, "num") + top
            if curves else '<p class="muted">Not computed (<code>--direct-only</code>).</p>')
    return ('<section id="coverage"><h2>Patch-point coverage</h2><p>Fewest functions or '
            "macros whose rewriting covers a share of the sites (greedy set cover).</p>"
            f"{body}</section>")


def _mix(sites: list[Site]) -> str:
    accessors = list(count_by(sites, lambda s: s.accessor).items())
    families = list(count_by(sites, lambda s: s.family).items())
    kinds = list(count_by(sites, lambda s: s.kind).items())
    more = len(accessors) - TOP_ACCESSORS
    tail = f'<p class="muted">{more:,} more accessors.</p>' if more > 0 else ""
    return ('<section id="mix"><h2>Accessor mix</h2>'
            f"<h3>Top {TOP_ACCESSORS} accessors</h3>"
            f"{bar_chart(accessors[:TOP_ACCESSORS], 'sites per accessor')}{tail}"
            f"<h3>Families</h3>{bar_chart(families, 'sites per family')}"
            f"<h3>Kinds</h3>{bar_chart(kinds, 'sites per kind')}</section>")


def _site_cells(site: Site) -> list[str]:
    via = " &gt; ".join(e(v) for v in site.via) if site.via else e(site.callee)
    return [f'<code>{e(site.path)}:{site.line}:{site.column}</code>',
            f"<code>{e(site.function)}</code>", via, e(tdx_text(site)),
            f"<code>{e(site.code or '')}</code>"]


def _by_driver(found: Sequence[Finding]) -> list[tuple[str, list[Finding]]]:
    """Findings grouped by driver: largest group first, order kept inside a group."""
    groups: dict[str, list[Finding]] = {}
    for f in found:
        groups.setdefault(f.site.driver or ".", []).append(f)
    return sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def _site_list(section: str, title: str, intro: str, shown: Sequence[Finding],
               total: int) -> str:
    parts = [f'<section id="{section}"><h2>{title} ({total:,})</h2><p>{intro}</p>']
    if total > len(shown):
        parts.append(f'<p class="left-out">Showing {len(shown):,} of {total:,}: '
                     f"{total - len(shown):,} left out. Every site is in "
                     "<code>--format json</code> and <code>--format csv</code>.</p>")
    for driver, group in _by_driver(shown):
        table = _table(("site", "function", "via", "TDX", "code"),
                       (_site_cells(f.site) for f in group), "sites")
        parts.append(f"<details><summary>{e(driver)} ({len(group):,})</summary>{table}"
                     "</details>")
    return "".join(parts) + "</section>"


def _problems(result: ScanResult) -> str:
    items = "".join(f"<li><code>{e(p.path)}</code>: {e(p.message)}</li>"
                    for p in result.problems[:MAX_PROBLEMS])
    more = len(result.problems) - MAX_PROBLEMS
    tail = f'<p class="muted">{more:,} more in <code>--format json</code>.</p>' if more > 0 else ""
    return (f'<section id="problems"><h2>Problems ({len(result.problems):,})</h2>'
            "<p>Files that could not be read or parsed cleanly: their sites may be "
            f"incomplete.</p><ul>{items}</ul>{tail}</section>")


def render(result: ScanResult) -> str:
    sites = active_sites(result)
    found = findings(sites)
    drivers = driver_rows(result, sites)
    oops = [f for f in found if f.cls in (RAW_DEREF, UNSUPPORTED)]
    hot = hot_order(found)
    data = {"fields": list(DRIVER_FIELDS), "drivers": _driver_data(drivers)}
    body = "".join([
        _header(result, sites), _nav(),
        '<pre id="js-errors" hidden></pre>',
        _summary(result, sites, found), _drivers(drivers), _coverage(result, sites),
        _mix(sites),
        _site_list("unsupported", "Sites that would oops in a TD",
                   "Raw <code>__iomem</code> dereferences and accessors the #VE handler "
                   "cannot emulate, grouped by driver.", oops[:MAX_UNSUPPORTED], len(oops)),
        _site_list("hot", "Hot #VE sites",
                   "Sites that trap on an interrupt, NAPI poll or xmit path, costliest "
                   "(most #VE exits per execution) first, grouped by driver.",
                   hot[:TOP_HOT], len(hot)),
        _problems(result),
        '<pre id="selftest" hidden></pre>',
    ])
    title = f"mmioscan: Linux {result.kernel_version or 'unknown version'}"
    return clean(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><script>{_ERROR_TRAP}</script><style>{_CSS}</style>"
        f'</head><body data-rendered="no">\n{body}\n'
        f'<script type="application/json" id="data">{json_island(data)}</script>\n'
        f"<script>{_SCRIPT}</script>\n</body></html>\n")


# --- static assets -------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:0 16px;
color:#222}
h1{font-size:22px}h2{margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
dl.meta{display:grid;grid-template-columns:max-content auto;gap:2px 12px}
dl.meta dt{font-weight:600}dl.meta dd{margin:0}
nav{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:8px 0}th,td{padding:2px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}
td.n{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none;background:#f6f6f6}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}
table.sites code{white-space:pre-wrap;word-break:break-all}
code{font:12px/1.3 ui-monospace,monospace}
details{margin:4px 0}summary{cursor:pointer}
.muted{color:#666}.left-out{background:#fff6d6;padding:4px 8px}
#js-errors{background:#fdd;padding:8px}
.controls{margin:8px 0}svg.chart{display:block;margin:8px 0}svg text{font-size:11px}
"""

# First script of the page: collects errors before anything else can throw.
_ERROR_TRAP = """
(function(){var pending=[];function show(m){var el=document.getElementById("js-errors");
if(!el){pending.push(m);return;}el.hidden=false;el.textContent+=m+"\\n";}
window.onerror=function(msg,src,line,col){show(String(msg)+" at "+line+":"+col);};
window.addEventListener("unhandledrejection",function(ev){show("unhandled: "+ev.reason);});
document.addEventListener("DOMContentLoaded",function(){var p=pending;pending=[];
p.forEach(show);});})();
"""

_SCRIPT = """
(function(){"use strict";
var data=JSON.parse(document.getElementById("data").textContent);
var F={};data.fields.forEach(function(f,i){F[f]=i;});
var rows=data.drivers;
var table=document.getElementById("driver-table");
var tbody=table.tBodies[0];
var filter=document.getElementById("driver-filter");
var groupSel=document.getElementById("driver-group");
var state={key:"sites",desc:true};
var NUM={sites:1,ve:1,paravirt:1,unsupported:1,hot:1,ve_exits:1,points_90:1};
function text(v){return v===null||v===undefined?"":String(v);}
function matches(r){
  var g=groupSel.value;if(g&&(r[F.group]||"unknown")!==g)return false;
  var q=filter.value.trim().toLowerCase();if(!q)return true;
  return (text(r[F.name])+" "+text(r[F.config])+" "+text(r[F.folders])).toLowerCase()
    .indexOf(q)>=0;}
function cmp(a,b){
  var i=F[state.key],x=a[i],y=b[i],d=0;
  if(x===null&&y!==null)return 1;if(y===null&&x!==null)return -1;
  if(NUM[state.key]){d=(x||0)-(y||0);}else{x=text(x);y=text(y);d=x<y?-1:(x>y?1:0);}
  if(state.desc)d=-d;
  if(d===0){d=a[F.name]<b[F.name]?-1:(a[F.name]>b[F.name]?1:0);}
  return d;}
function fmt(v,key){if(v===null||v===undefined)return "-";
  return NUM[key]?Number(v).toLocaleString("en-US"):String(v);}
function render(){
  var shown=rows.filter(matches).sort(cmp);
  var frag=document.createDocumentFragment();
  var keys=["name","group","config","sites","ve","paravirt","unsupported","hot","ve_exits",
    "points_90"];
  shown.forEach(function(r){var tr=document.createElement("tr");
    keys.forEach(function(k){var td=document.createElement("td");
      td.textContent=fmt(k==="group"?(r[F.group]||"unknown"):r[F[k]],k);
      if(NUM[k])td.className="n";
      if(k==="name"){td.title=text(r[F.folders])+(r[F.group_reason]?
        " \\u2014 "+r[F.group_reason]:"");}
      tr.appendChild(td);});
    frag.appendChild(tr);});
  tbody.textContent="";tbody.appendChild(frag);
  document.getElementById("driver-count").textContent=
    shown.length.toLocaleString("en-US")+" of "+rows.length.toLocaleString("en-US")+" drivers";
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th){
    th.setAttribute("aria-sort",th.getAttribute("data-key")===state.key?
      (state.desc?"descending":"ascending"):"none");});}
function sortBy(key){
  if(state.key===key){state.desc=!state.desc;}else{state.key=key;state.desc=!!NUM[key];}
  render();}
Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th){
  th.addEventListener("click",function(){sortBy(th.getAttribute("data-key"));});
  th.addEventListener("keydown",function(ev){if(ev.key==="Enter")sortBy(
    th.getAttribute("data-key"));});});
filter.addEventListener("input",render);groupSel.addEventListener("change",render);
render();
document.body.setAttribute("data-rendered","yes");
function column(i){return Array.prototype.map.call(tbody.rows,function(tr){
  return tr.cells[i].textContent;});}
function ordered(list,desc,num){for(var i=1;i<list.length;i++){
  var a=num?Number(list[i-1].replace(/,/g,"")):list[i-1];
  var b=num?Number(list[i].replace(/,/g,"")):list[i];
  if(desc?a<b:a>b)return false;}return true;}
function header(key){return table.querySelector("th[data-key='"+key+"']");}
function selftest(){
  var out={rows:rows.length};
  header("name").click();
  out.name_ascending=state.key==="name"&&!state.desc&&ordered(column(0),false,false);
  header("sites").click();
  out.sites_descending=state.desc&&ordered(column(3),true,true);
  header("sites").click();
  out.sites_ascending=!state.desc&&ordered(column(3),false,true);
  var probe=rows.length?text(rows[0][F.name]):"";
  filter.value=probe;filter.dispatchEvent(new Event("input"));
  var names=column(0);
  out.filter=probe;out.filter_rows=tbody.rows.length;
  out.filter_ok=names.length>0&&names.every(function(n){return n.indexOf(probe)>=0;})
    ||rows.length===0;
  filter.value="";filter.dispatchEvent(new Event("input"));
  var values=Array.prototype.map.call(groupSel.options,function(o){return o.value;});
  var g=values.indexOf("virtio")>=0?"virtio":(values[1]||"");
  groupSel.value=g;groupSel.dispatchEvent(new Event("change"));
  out.group=g;out.group_rows=tbody.rows.length;
  out.group_ok=column(1).every(function(v){return v===g;});
  groupSel.value="";groupSel.dispatchEvent(new Event("change"));
  out.reset_rows=tbody.rows.length;
  var el=document.getElementById("selftest");
  el.textContent=JSON.stringify(out);el.hidden=false;
  document.body.setAttribute("data-selftest","done");}
if(/[?&]selftest(=|&|$)/.test(location.search))selftest();
})();
"""
