// A statsd backend for the throughput benchmark (collector-shim/examples/throughput): it adds up
// the daemon's own `statsd.metrics_received` / `packets_received` / `bad_lines_seen` counters
// across flushes (the daemon resets them every flush) and reports the running totals, including
// the current, not yet flushed interval, through the admin interface's `stats` command:
//   bench.metrics_received_total: N
// It sends nothing anywhere; the daemon still parses, aggregates and computes every flush.
'use strict';

function CountBackend(startupTime, config, emitter) {
  const prefix = config.prefixStats !== undefined ? config.prefixStats : 'statsd';
  const keys = ['metrics_received', 'packets_received', 'bad_lines_seen'];
  const totals = { metrics_received: 0, packets_received: 0, bad_lines_seen: 0 };
  let live = null; // the daemon's live counters object (the same object every flush)
  let flushes = 0;
  emitter.on('flush', function (timestamp, metrics) {
    // backends run before the daemon clears its counters for the next interval
    live = metrics.counters;
    for (const k of keys) totals[k] += Number(live[prefix + '.' + k] || 0);
    flushes++;
  });
  emitter.on('status', function (write) {
    write(null, 'bench', 'flushes', flushes);
    for (const k of keys) {
      const current = live ? Number(live[prefix + '.' + k] || 0) : 0;
      write(null, 'bench', k + '_total', totals[k] + current);
    }
  });
}

exports.init = function (startupTime, config, events) {
  new CountBackend(startupTime, config, events);
  return true;
};
