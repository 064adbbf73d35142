"""softena trace: the kernel's drops on a device's interfaces, counted by BPF probes (bcc)."""
