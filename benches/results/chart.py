#!/usr/bin/env python3
"""Draws scaling.svg (aggregate calls per microsecond against threads) from
contention.csv, which holds ns per call per thread from
`cargo bench --bench contention`. Plain SVG, no dependencies:
python3 benches/results/chart.py"""
import csv, os

here = os.path.dirname(os.path.abspath(__file__))
rows = [r for r in csv.reader(open(os.path.join(here, "contention.csv"))) if r and not r[0].startswith("#")]
threads = [int(t) for t in rows[0][1:]]
series = [(r[0], [float(x) for x in r[1:]]) for r in rows[1:]]
# Aggregate throughput: threads / (ns per call per thread) -> calls per ns -> x1000 per us.
through = [(name, [t * 1000.0 / ns for t, ns in zip(threads, v)]) for name, v in series]

W, H, L, R, T, B = 720, 420, 70, 230, 40, 50
top = max(max(v) for _, v in through) * 1.1
x = lambda t: L + (threads.index(t)) * (W - L - R) / max(1, len(threads) - 1)
y = lambda v: H - B - v / top * (H - T - B)
colors = ["#888888", "#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<text x="{L}" y="22" font-size="15">One breaker shared by N threads: aggregate calls per microsecond (higher is better)</text>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-R}" y2="{H-B}" stroke="black"/>',
       f'<line x1="{L}" y1="{T}" x2="{L}" y2="{H-B}" stroke="black"/>']
for t in threads:
    out.append(f'<text x="{x(t)}" y="{H-B+18}" text-anchor="middle">{t} thread{"s" if t > 1 else ""}</text>')
for i in range(6):
    v = top * i / 5
    out.append(f'<line x1="{L-4}" y1="{y(v):.1f}" x2="{W-R}" y2="{y(v):.1f}" stroke="#eee"/>')
    out.append(f'<text x="{L-8}" y="{y(v)+4:.1f}" text-anchor="end">{v:.0f}</text>')
for (name, v), c in zip(through, colors):
    pts = " ".join(f"{x(t):.1f},{y(val):.1f}" for t, val in zip(threads, v))
    out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2.5"/>')
    for t, val in zip(threads, v):
        out.append(f'<circle cx="{x(t):.1f}" cy="{y(val):.1f}" r="3.5" fill="{c}"/>')
for i, ((name, v), c) in enumerate(zip(through, colors)):
    ly = T + 20 + i * 22
    out.append(f'<rect x="{W-R+20}" y="{ly-10}" width="14" height="4" fill="{c}"/>')
    out.append(f'<text x="{W-R+40}" y="{ly-4}">{name}</text>')
out.append(f'<text x="{L}" y="{H-10}" fill="#555">Measured on a 2-vCPU machine; 8 and 16 threads were not measured (see README).</text>')
out.append("</svg>")
open(os.path.join(here, "scaling.svg"), "w").write("\n".join(out) + "\n")
