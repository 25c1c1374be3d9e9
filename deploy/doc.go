// Package deploy holds Entrepot's deployment examples: the image
// (Dockerfile), a docker-compose.yml of three replicas on MinIO and Redis
// behind nginx (compose/), and a Helm chart of the same topology
// (helm/entrepot/). It has no code; its tests keep the examples correct:
// they render the chart and check its objects against the real
// configuration loader, and run the compose topology as processes on
// loopback, pulling through its load balancer.
package deploy
