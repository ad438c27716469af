"""What a run leaves for people to read: the summary printed at the end, the rankings computed from
a run folder (红黑榜, health profiles), and the self-contained ``report.html`` with its plots."""
