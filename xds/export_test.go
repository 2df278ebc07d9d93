package xds

// FrozenBuilds is how many frozen resource sets were built.
func FrozenBuilds() int {
	frozenBuilds.Lock()
	defer frozenBuilds.Unlock()
	return frozenBuilds.n
}

// DeltaBuilds is how many delta resource sets were built.
func DeltaBuilds() int {
	deltaBuilds.Lock()
	defer deltaBuilds.Unlock()
	return deltaBuilds.n
}

// MaxVHDSPerStream is how many hosts one Envoy is served.
const MaxVHDSPerStream = maxVHDSPerStream
