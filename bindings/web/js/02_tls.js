// Stands in for deno_net's TLS module, which deno_fetch's HTTP-client module imports for
// Deno.createHttpClient() client certificates. Workers have no such API; edge does not ship
// deno_net (raw TCP/UDP/QUIC). The one function it provides refuses with a clear error.
(function () {
const { primordials } = __bootstrap;
const { TypeError } = primordials;

function loadTlsKeyPair(api) {
  throw new TypeError(`${api}: client certificates are not supported on edge`);
}

return { loadTlsKeyPair };
})();
