package config

// XDSSecurity is how the ADS and admin servers authenticate their clients.
type XDSSecurity struct{}

// xdsSecurity checks xds.security.
func (v *validator) xdsSecurity() {}
