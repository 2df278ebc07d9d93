package dubbo

import "github.com/protogate/protogate/config"

// Usable counts the providers at addrs a call could go to now: not
// ejected, not shutting down, and over the dubbo protocol with a
// connection open. A provider over the dubbo protocol that has none is
// dialled in the background, so that a bridge that has made no call yet
// still learns whether its providers are there.
func (inv *Invoker) Usable(protocol string, addrs []string) int {
	n := 0
	inv.outliers.mu.Lock()
	defer inv.outliers.mu.Unlock()
	now := inv.outliers.now()
	for _, addr := range addrs {
		if st := inv.outliers.m[addr]; st != nil && !st.until.IsZero() && now.Before(st.until) {
			continue
		}
		if protocol == config.DubboProtocolTriple {
			n++ // triple's HTTP/2 transport tells nothing before a call
			continue
		}
		switch {
		case inv.wire.Closing(addr):
		case inv.wire.Connected(addr):
			n++
		default:
			inv.wire.Connect(addr)
		}
	}
	return n
}
