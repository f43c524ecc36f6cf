// Charts from TradingView's Lightweight Charts, pinned in web/package.json and vendored.
import {
  CandlestickSeries, ColorType, LineSeries, createChart, createSeriesMarkers,
} from "/vendor/lightweight-charts.standalone.production.mjs";

// No built-in logo: it injects a <style> element, which the CSP refuses; the attribution the
// library's licence asks for is the page footer's link instead.
const theme = {
  layout: { background: { type: ColorType.Solid, color: "#182028" }, textColor: "#9aa8b5", attributionLogo: false },
  grid: { vertLines: { color: "#2a3540" }, horzLines: { color: "#2a3540" } },
  timeScale: { timeVisible: true, secondsVisible: false },
  autoSize: true,
};

const secs = (t) => Math.floor(new Date(t).getTime() / 1000);

// Candles with live updates and the challenge's fills marked.
export function candles(el, bars, fills) {
  const chart = createChart(el, theme);
  const series = chart.addSeries(CandlestickSeries, {
    upColor: "#2ecc71", downColor: "#ff5c5c", borderVisible: false, wickUpColor: "#2ecc71", wickDownColor: "#ff5c5c",
  });
  series.setData(bars.map((c) => ({
    time: secs(c.open_time), open: +c.open, high: +c.high, low: +c.low, close: +c.close,
  })));
  const markers = createSeriesMarkers(series, []);
  const mark = (list) => markers.setMarkers(list
    .map((t) => ({
      time: Math.floor(secs(t.executed_at) / 60) * 60,
      position: t.side === "BUY" ? "belowBar" : "aboveBar",
      color: t.side === "BUY" ? "#2ecc71" : "#ff5c5c",
      shape: t.side === "BUY" ? "arrowUp" : "arrowDown",
      text: `${t.side} ${t.quantity}`,
    }))
    .sort((a, b) => a.time - b.time));
  mark(fills);
  let last = bars.length ? bars[bars.length - 1] : null;
  let current = last ? { time: secs(last.open_time), open: +last.open, high: +last.high, low: +last.low, close: +last.close } : null;
  return {
    mark,
    price(p) { // a live price into the current minute's candle
      const mid = (Number(p.bid) + Number(p.ask)) / 2;
      const minute = Math.floor(secs(p.time) / 60) * 60;
      if (!current || minute > current.time) current = { time: minute, open: mid, high: mid, low: mid, close: mid };
      else if (minute === current.time) {
        current = { ...current, high: Math.max(current.high, mid), low: Math.min(current.low, mid), close: mid };
      } else return;
      series.update(current);
    },
  };
}

export function line(el, points) {
  const chart = createChart(el, theme);
  const series = chart.addSeries(LineSeries, { color: "#4da3ff", lineWidth: 2 });
  series.setData(points);
  return series;
}
