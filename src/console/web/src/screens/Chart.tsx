import { useEffect, useRef } from 'react';
import uPlot from 'uplot';

export interface Series {
  label: string;
  color: string;
  values: Array<number | null>;
}

/** A small uPlot line chart (times in epoch ms); redrawn in place when the data changes. */
export function Chart({
  title,
  times,
  series,
  unit,
}: {
  title: string;
  times: number[];
  series: Series[];
  unit: string;
}) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = [times.map((t) => t / 1000), ...series.map((s) => s.values)] as uPlot.AlignedData;
  const shape = series.map((s) => s.label).join('|');
  useEffect(() => {
    if (!box.current) return;
    const width = Math.max(280, box.current.clientWidth || 420);
    plot.current = new uPlot(
      {
        width,
        height: 160,
        legend: { show: true },
        scales: { x: { time: true } },
        axes: [{}, { label: unit, size: 50 }],
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, spanGaps: true }))],
      },
      data,
      box.current,
    );
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // The chart is rebuilt only when its series change; new points go through setData below.
  }, [shape]);
  useEffect(() => {
    plot.current?.setData(data);
  });
  return (
    <figure className="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} role="img" aria-label={`${title} chart`} />
    </figure>
  );
}
