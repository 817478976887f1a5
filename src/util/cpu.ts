/** CPU seconds (user + system, every thread of this process) since a `process.cpuUsage()` reading. */
export function cpuSecondsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1e6;
}
