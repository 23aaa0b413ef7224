// Time-series charts with uPlot (a small canvas charting library). uPlot
// styles its elements through the CSSOM, which the panel's strict CSP allows.

import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface Line {
  label: string;
  values: (number | null)[];
  color: string;
  /** Formats a value for the legend and axis. */
  format?: (v: number) => string;
}

/** One chart: `times` (Unix seconds) against one or more lines. */
export function Chart({ title, times, lines, height = 180 }: { title: string; times: number[]; lines: Line[]; height?: number }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const fmt = lines[0]?.format;
    const plot = new uPlot(
      {
        width: Math.max(280, el.clientWidth),
        height,
        series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.color, width: 2, value: (_u: uPlot, v: number | null) => (v === null ? "-" : l.format ? l.format(v) : String(v)) }))],
        axes: [{}, { values: (_u: uPlot, vals: number[]) => vals.map((v) => (fmt ? fmt(v) : String(v))), size: 70 }],
        scales: { x: { time: true } },
        legend: { live: true },
      },
      [times, ...lines.map((l) => l.values)] as uPlot.AlignedData,
      el,
    );
    const resize = () => plot.setSize({ width: Math.max(280, el.clientWidth), height });
    window.addEventListener("resize", resize);
    return () => {
      window.removeEventListener("resize", resize);
      plot.destroy();
    };
  }, [times, lines, height]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={title} />
    </figure>
  );
}
