# gnuplot -e "datafile='results/fanout.tsv'; outfile='fanout.png'" plot.gp
# Delivered msgs/s (left axis) and p99 latency (right axis) against
# subscribers on one channel, before and after the outbox/hub changes.
if (!exists("datafile")) datafile = 'results/fanout.tsv'
if (!exists("outfile")) outfile = 'fanout.png'
set terminal pngcairo size 900,520 font "sans,10"
set output outfile
set title "eddy bench fanout: server and load generator on the same 2 cores"
set xlabel "subscribers on one channel"
set logscale x
set xrange [80:12500]
set xtics (100, 300, 1000, 3000, 10000)
set ylabel "delivered msgs/s"
set format y "%.1s%c"
set y2label "p99 publish-to-receive latency (ms)"
set y2tics
set ytics nomirror
set yrange [0:*]
set y2range [0:*]
set key top left
set grid
plot datafile using 1:4 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "delivered/s, after", \
     datafile using 1:2 with linespoints lw 2 pt 6 dt 2 lc rgb "#1f77b4" title "delivered/s, before", \
     datafile using 1:5 axes x1y2 with linespoints lw 2 pt 5 lc rgb "#d62728" title "p99 ms, after", \
     datafile using 1:3 axes x1y2 with linespoints lw 2 pt 4 dt 2 lc rgb "#d62728" title "p99 ms, before", \
     100 axes x1y2 with lines lc rgb "#999999" dt 3 title "p99 target 100 ms"
