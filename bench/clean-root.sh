#!/bin/sh
# Detaches any mount left under each DIR given, then deletes it (bench scratch roots only).
for dir in "$@"; do
    awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
        sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$dir"
done
