# Freshness by broker from streamtrain_bench_freshness (bench/README.md): left, the CDF of
# record produced -> served per column (broker, or broker with a --variant); right, its
# p50/p90/p99 per column for the whole run and after the first second, against the target.
# The benchmark runs it; to redraw from the committed CSVs (ids: the columns, in the order
# of freshness.csv, whose first 2 x columns rows are the two end-to-end intervals):
#   gnuplot -e "ids='mock kafka'" bench/plot_freshness.gp
if (!exists("csv")) csv = 'bench/results/freshness.csv'
if (!exists("cdf")) cdf = 'bench/results/freshness_cdf.csv'
if (!exists("png")) png = 'bench/results/freshness.png'
if (!exists("ids")) ids = 'mock kafka'
if (!exists("target")) target = 100

# 'mock' -> 'in-process', 'kafka' -> 'Kafka', 'kafka-v1' -> 'Kafka v1' (--variant 1).
variant(id) = (strstrt(id, '-v') > 0) ? ' ' . id[strstrt(id, '-v') + 1:] : ''
short(id) = ((strstrt(id, 'mock') == 1) ? 'in-process' : 'Kafka') . variant(id)
title(id) = ((strstrt(id, 'mock') == 1) ? 'in-process broker' : 'Apache Kafka') . variant(id)

set terminal pngcairo size 1200,500 font ',10'
set output png
set datafile separator ','
set multiplot layout 1,2
set bmargin 4

set grid
set logscale x
set xlabel 'record produced -> served by the replica (ms, log scale)'
set ylabel 'fraction of records'
set yrange [0:1]
set key bottom right
set arrow 1 from target, graph 0 to target, graph 1 nohead dt 2 lc rgb 'red'
set label 1 sprintf('target p99 %g ms', target) at target, graph 0.05 offset 0.5,0 tc rgb 'red'
plot for [id in ids] cdf skip 1 using (strcol(1) eq id ? $2 : NaN):3 with lines lw 2 \
     title title(id)

unset arrow 1
unset label 1
unset logscale x
set xlabel ''
set ylabel 'record produced -> served (ms)'
set autoscale y
set yrange [0:*]
set key top left
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
unset grid
set grid ytics
set arrow 2 from graph 0, first target to graph 1, first target nohead dt 2 lc rgb 'red'
set xtics font ',9'
label(id, interval) = short(id) . "\n" . ((interval eq 'end_to_end') ? 'whole' : 'after 1 s')
last = 2 * words(ids) - 1
plot csv skip 1 every ::0::last using 7:xtic(label(strcol(1), strcol(4))) title 'p50', \
     '' skip 1 every ::0::last using 8 title 'p90', \
     '' skip 1 every ::0::last using 9 title 'p99'
unset multiplot
