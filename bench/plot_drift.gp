# The plot of streamtrain_bench_drift (bench/README.md): the windowed prequential accuracy
# (last 1,000 records) over the stream, one panel per stream, one line per configuration.
# The benchmark runs it; to redraw from the committed CSV:
#   gnuplot -e "curves='bench/results/drift_curves.csv'; png='bench/results/drift.png'" \
#     bench/plot_drift.gp
if (!exists("curves")) curves = 'bench/results/drift_curves.csv'
if (!exists("png")) png = 'bench/results/drift.png'
if (!exists("streams")) streams = 'fashion-mnist-permute fashion-mnist-recurring hyperplane-abrupt hyperplane-gradual'
if (!exists("configs")) configs = 'volume adapt hold retrain adapt-forget retrain-forget'

set terminal pngcairo size 1400,900 font ',10'
set output png
set datafile separator ','
set grid
set key bottom right
set xlabel 'streamed record'
set ylabel 'windowed prequential accuracy'
set yrange [0:1]

colour(c) = c eq 'volume' ? '#000000' : c eq 'adapt' ? '#d95f02' : c eq 'hold' ? '#7570b3' : \
  c eq 'retrain' ? '#1b9e77' : c eq 'adapt-forget' ? '#e7298a' : '#66a61e'
only(s, c) = (strcol(1) eq s && strcol(2) eq c) ? column(4) : NaN

n = words(streams)
set multiplot layout (n + 1) / 2, 2
do for [i = 1:n] {
  s = word(streams, i)
  set title s
  plot for [c in configs] curves skip 1 using 3:(only(s, c)) with lines lw 1.5 lc rgb colour(c) title c
}
unset multiplot
