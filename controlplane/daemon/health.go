package daemon

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hangarmesh/hangar/controlplane/store"
)

// etcdProbeTimeout bounds the etcd read behind /readyz and the
// hangar_controlplane_etcd_healthy gauge.
const etcdProbeTimeout = time.Second

// etcdHealthy reports whether a linearizable read of etcd answers: what
// /readyz and the gauge show.
func etcdHealthy(ctx context.Context, st *store.Store) error {
	ctx, cancel := context.WithTimeout(ctx, etcdProbeTimeout)
	defer cancel()
	_, _, err := st.Config(ctx)
	return err
}

// etcdHealthGauge exports etcdHealthy at every scrape, so an alert fires on
// a replica that lost etcd (deploy/prometheus/rules.yaml, HangarEtcdUnhealthy).
func etcdHealthGauge(st *store.Store) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hangar_controlplane_etcd_healthy",
		Help: "1 if this replica read etcd within a second at scrape time, else 0."}, func() float64 {
		if etcdHealthy(context.Background(), st) != nil {
			return 0
		}
		return 1
	})
}
