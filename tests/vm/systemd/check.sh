#!/bin/sh
systemctl --version | head -1
systemctl is-system-running
mount | grep bpf
