package xds

// FrozenBuilds is how many frozen resource sets were built.
func FrozenBuilds() int {
	frozenBuilds.Lock()
	defer frozenBuilds.Unlock()
	return frozenBuilds.n
}
