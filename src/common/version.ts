/** The etcd API version etsd speaks (GET /version, Status, etcd_cluster_version). */
export const ETCD_API_VERSION = '3.5.0';
