package config

// Rollout is the canary rollout of a new version of the mapping.
type Rollout struct {
	CanaryLabel   string   `json:"canary_label" doc:"A node metadata key: nodes whose value for it is \"true\" are the canaries. Empty: canary_percent chooses them." example:"protogate.canary"`
	CanaryPercent float64  `json:"canary_percent" min:"0" max:"100" doc:"With no canary_label: a stable share of each group's nodes, by a hash of the node id, are the canaries." example:"10"`
	BakeTime      Duration `json:"bake_time" default:"2m" min:"1s" max:"24h" doc:"How long the canaries hold a new version before it is promoted to every node."`
	MaxErrorRatio float64  `json:"max_error_ratio" default:"0.05" min:"0" max:"1" doc:"The share of 5xx answers the group's bridges may give on the routes the new version adds or changes while it bakes; more rolls the canaries back."`
	StateFile     string   `json:"state_file" doc:"Where the rollout in progress is kept, so a restarted control plane resumes it instead of jumping to the new version. Empty: a file named protogate-rollout.json in the system temp directory." example:"/var/lib/protogate/rollout.json"`
}

// Enabled reports whether a rollout is configured (xds.rollout set).
func (r *Rollout) Enabled() bool { return r != nil }

// rollout checks xds.rollout.
func (v *validator) rollout() {
	r := v.cfg.XDS.Rollout
	if r == nil {
		return
	}
	if r.CanaryLabel == "" && r.CanaryPercent == 0 {
		v.add("xds.rollout", "set canary_label or canary_percent: without either there are no canaries")
	}
}
