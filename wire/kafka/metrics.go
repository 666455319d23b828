package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus instruments, registered on the
// Registerer given in Config (never the global default).
type metrics struct {
	connections    prometheus.Gauge
	accepted       prometheus.Counter
	requests       *prometheus.CounterVec
	requestSeconds *prometheus.HistogramVec
	protocolErrors *prometheus.CounterVec
	refused        *prometheus.CounterVec
	readPaused     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "morax_kafka_connections", Help: "Open Kafka client connections."}),
		accepted:    prometheus.NewCounter(prometheus.CounterOpts{Name: "morax_kafka_connections_accepted_total", Help: "Kafka client connections accepted."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_kafka_requests_total",
			Help: "Kafka requests decoded, by API."}, []string{"api"}),
		requestSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "morax_kafka_request_seconds",
			Help:    "Time from reading a Kafka request to handing its response to the writer, by API.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5, 10, 30}}, []string{"api"}),
		protocolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_kafka_protocol_errors_total",
			Help: "Connections closed for a protocol violation, by reason."}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_kafka_connections_refused_total",
			Help: "Kafka connections closed on accept for exceeding a limit, by reason (max_connections, max_connections_per_ip)."}, []string{"reason"}),
		readPaused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "morax_kafka_read_paused_total",
			Help: "Times a Kafka connection stopped reading requests until the client read its responses, by the bound reached (requests, fetches, response_bytes)."}, []string{"bound"}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.accepted, m.requests, m.requestSeconds, m.protocolErrors, m.refused, m.readPaused)
	}
	return m
}
