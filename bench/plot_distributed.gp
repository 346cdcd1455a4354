# The plot of streamtrain_bench_distributed (bench/README.md): the group's windowed
# prequential accuracy (last 1,000 group records) over stream time, one panel per rate
# pattern, one line per configuration. The benchmark runs it; to redraw from the committed CSV:
#   gnuplot -e "curves='bench/results/distributed_curves.csv'; png='bench/results/distributed.png'" \
#     bench/plot_distributed.gp
if (!exists("curves")) curves = 'bench/results/distributed_curves.csv'
if (!exists("png")) png = 'bench/results/distributed.png'
if (!exists("patterns")) patterns = '4x normal'
if (!exists("configs")) configs = 'weighted-persist-dense conventional-persist-dense weighted-truncate-dense weighted-persist-topk'

set terminal pngcairo size 1400,550 font ',10'
set output png
set datafile separator ','
set grid
set key bottom right
set xlabel 'stream time (s)'
set ylabel 'group windowed prequential accuracy'
set yrange [0.4:1]

colour(c) = c eq 'weighted-persist-dense' ? '#000000' : c eq 'conventional-persist-dense' ? '#d95f02' : \
  c eq 'weighted-truncate-dense' ? '#7570b3' : c eq 'weighted-persist-topk' ? '#1b9e77' : '#e7298a'
only(p, c) = (strcol(1) eq p && strcol(2) eq c) ? column(5) : NaN

n = words(patterns)
set multiplot layout 1, n
do for [i = 1:n] {
  p = word(patterns, i)
  set title 'rates: '.p
  plot for [c in configs] curves skip 1 using 3:(only(p, c)) with lines lw 1.5 lc rgb colour(c) title c
}
unset multiplot
