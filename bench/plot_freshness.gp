# The CDF of end-to-end freshness from streamtrain_bench_freshness (bench/README.md). The
# benchmark runs it; to redraw from the committed CSV:
#   gnuplot -e "csv='bench/results/freshness_cdf.csv'; png='bench/results/freshness.png'" \
#     bench/plot_freshness.gp
if (!exists("csv")) csv = 'bench/results/freshness_cdf.csv'
if (!exists("png")) png = 'bench/results/freshness.png'

set terminal pngcairo size 800,500 font ',10'
set output png
set datafile separator ','
set grid
set logscale x
set xlabel 'record produced -> served by a replica (ms, log scale)'
set ylabel 'fraction of records'
set key bottom right
plot csv skip 1 using 1:2 with lines lw 2 title 'end-to-end freshness'
