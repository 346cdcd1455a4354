# streamtrain_bench_delta_size (bench/README.md): bytes per iteration over the entropy
# bound, per model and value encoding, against the ratio. Redraw from the committed CSV:
#   gnuplot -e "csv='bench/results/delta_size.csv'; png='bench/results/delta_size.png'" \
#     bench/plot_delta_size.gp
if (!exists("csv")) csv = 'bench/results/delta_size.csv'
if (!exists("png")) png = 'bench/results/delta_size.png'
set terminal pngcairo size 1000,500 font ',10'
set output png
set datafile separator ','
set grid
set logscale x
set xlabel 'ratio k / N (%)'
set ylabel 'bytes / entropy bound'
set key outside right
set title 'Delta size against k x value bits + log2 C(N, k) (target: 1.1x + 64 bytes)'
only(m, e, col) = (strcol(1) eq m && strcol(5) eq e) ? column(col) : NaN
plot for [m in 'lenet5 resnet18 resnet50'] for [e in 'f32'] csv skip 1 \
       using ($4*100):(only(m, 'f32 new', 9)) with linespoints title m.' f32 new', \
     for [m in 'lenet5 resnet18 resnet50'] csv skip 1 \
       using ($4*100):(only(m, 'f16 increment', 9)) with linespoints dt 2 title m.' f16 increment', \
     1.1 with lines lc 'black' dt 3 title '1.1x bound'
