package config

// XDSLimits bound the state xDS clients make the control plane hold.
type XDSLimits struct{}

// xdsLimits checks xds.limits.
func (v *validator) xdsLimits() {}
