// statsd's own servers/udp.js plus one call: SO_RCVBUF = config.recvBufferSize (node's dgram
// setRecvBufferSize, the same setsockopt the shim makes; the kernel caps it at
// net.core.rmem_max and doubles it). The granted size is printed for the benchmark to read.
'use strict';
const dgram = require('dgram');

exports.start = function (config, callback) {
  const server = dgram.createSocket(config.address_ipv6 ? 'udp6' : 'udp4', callback);
  server.bind(config.port || 8125, config.address || undefined, function () {
    if (config.recvBufferSize) server.setRecvBufferSize(config.recvBufferSize);
    console.log('bench: udp ' + server.address().port + ' SO_RCVBUF granted ' + server.getRecvBufferSize());
  });
  this.server = server;
  return true;
};
